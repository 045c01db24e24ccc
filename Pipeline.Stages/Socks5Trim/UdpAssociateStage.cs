using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Stages.Socks5Trim;

/// <summary>
/// Local: a UDP ASSOCIATE request. Replies success with the UDP relay's address (RFC 1928 § 6: BND.ADDR/BND.PORT
/// is where the client sends its datagrams), registers the client's address, and keeps the association while the
/// control connection stays open; when the client closes it (or it fails, or its keepalive finds the client gone), the association and the NAT entries of
/// the client endpoints attached to it end (<see cref="UdpAssociations"/>).
/// The wait is a readiness wait; whatever the client sends meanwhile is read into 64 bytes and discarded.
/// <para>
/// The control connection carries no data, so no idle timeout applies to it: a client whose host vanished (powered off,
/// its network gone: no FIN, no reset) held its association, and the association's place, for ever. TCP keepalive
/// finds such a peer: after <see cref="KeepAliveIdle"/> of silence the kernel probes every
/// <see cref="KeepAliveInterval"/>, and after <see cref="KeepAliveProbes"/> unanswered probes the receive fails
/// (ETIMEDOUT), which ends the association as a close does: within two minutes. A live client's stack answers the
/// probes itself; nothing changes for it.
/// </para>
/// </summary>
internal static class UdpAssociateStage
{
    /// <summary>Silence on the control connection before the first keepalive probe.</summary>
    public static readonly TimeSpan KeepAliveIdle = TimeSpan.FromSeconds(60);

    /// <summary>Between keepalive probes.</summary>
    public static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(10);

    /// <summary>Unanswered probes after which the client counts as gone (60 s + 5 × 10 s: under two minutes).</summary>
    public const int KeepAliveProbes = 5;

    /// <summary>
    /// Starts each association's hold and returns at once. (A lambda whose body is <c>_ = HoldAsync(...)</c> is a
    /// <c>Func&lt;T, Task&gt;</c>: the block awaited each hold, one at a time, so a second client's association waited
    /// for the first to end.)
    /// </summary>
    public static ActionBlock<TcpSession> Create(UdpAssociations associations, IPEndPoint udpEndPoint) =>
        new(session =>
        {
            _ = HoldAsync(session, associations, udpEndPoint);
        });

    private static async Task HoldAsync(TcpSession session, UdpAssociations associations, IPEndPoint udpEndPoint)
    {
        var client = session.Client;
        IDisposable? registration = null;
        try
        {
            var bound = DualStack.Unmapped(udpEndPoint.Address.Equals(IPAddress.Any) || udpEndPoint.Address.Equals(IPAddress.IPv6Any)
                ? new IPEndPoint(((IPEndPoint)client.LocalEndPoint!).Address, udpEndPoint.Port)
                : udpEndPoint);
            var declared = session.UdpAssociateAddress is { } named ? DualStack.Unmapped(named) : null;
            registration = associations.Register(DualStack.Unmapped(session.ClientEndPoint!).Address, session.UdpAssociatePort, declared);
            KeepAlive(client);
            await Socks5HandshakeStage.SendReplyAsync(session, Socks5Reply.Succeeded, ShadowsocksAddress.FromEndPoint(bound), session.Cancellation.Token).ConfigureAwait(false);
            session.Span?.SetTag("pipeline.udp.bound", bound.ToString());

            var discard = new byte[64];
            while (true)
            {
                if (await SocketIo.ReceiveAsync(client, discard, session.Cancellation.Token).ConfigureAwait(false) == 0)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The control connection is gone: so is the association.
        }
        finally
        {
            registration?.Dispose();
            session.Dispose();
        }
    }

    /// <summary>Turns TCP keepalive on for the control connection (see the class summary).</summary>
    private static void KeepAlive(Socket client)
    {
        client.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        client.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, (int)KeepAliveIdle.TotalSeconds);
        client.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, (int)KeepAliveInterval.TotalSeconds);
        client.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, KeepAliveProbes);
    }
}
