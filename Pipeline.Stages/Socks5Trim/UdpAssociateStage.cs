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
/// control connection stays open; when the client closes it (or it fails), the association and the NAT entries of
/// the client endpoints attached to it end (<see cref="UdpAssociations"/>).
/// The wait is a readiness wait; whatever the client sends meanwhile is read into 64 bytes and discarded.
/// </summary>
internal static class UdpAssociateStage
{
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
}
