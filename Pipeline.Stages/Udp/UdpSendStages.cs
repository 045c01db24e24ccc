using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// The last stage of each UDP direction: the datagram leaves and its buffer goes back to the pool. The send is
/// synchronous, on the event loop: a UDP send does not wait for the peer, only for room in the kernel's send buffer
/// (4 MiB here), and an async send would register the socket with .NET's socket engine as well.
/// </summary>
internal static class UdpSendStages
{
    private static readonly KeyValuePair<string, object?> s_upstream = new(TagNames.Direction, Direction.Upstream);
    private static readonly KeyValuePair<string, object?> s_downstream = new(TagNames.Direction, Direction.Downstream);

    /// <summary>
    /// Out through the NAT entry of the datagram's client (<paramref name="keyOf"/>: its address, or a 2022 server's
    /// session): to the server (local, tunnel: connected socket; <see cref="UdpServerAddress.Current"/>, asked before the
    /// entry, so that an address that changed has closed the entries of the old one) or to <see cref="Datagram.Resolved"/>
    /// (server). A new entry that cannot be opened (no socket left, or the event loop
    /// cannot watch it: <see cref="IOException"/>) costs this datagram only, as does one the table does not admit (local:
    /// the client's association ended while the datagram was on its way).
    /// </summary>
    public static ActionBlock<Datagram> ThroughNat<TKey>(StageOptions options, TaskScheduler loop, UdpNatTable<TKey> nat, Func<Datagram, TKey> keyOf, UdpServerAddress? server)
        where TKey : notnull =>
        new(UdpStageGuard.Isolate("udp.send", datagram =>
        {
            try
            {
                var to = server?.Current ?? datagram.Resolved!;
                if (nat.GetOrAdd(keyOf(datagram)) is not { } entry)
                {
                    UdpCounters.Drop(datagram, "association ended");
                    return;
                }

                entry.CountOut();
                Sent(entry.Outbound.SendTo(datagram.Data, SocketFlags.None, DualStack.For(entry.Outbound, to)), s_upstream, datagram);
                datagram.Return();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
            {
                UdpCounters.Drop(datagram, SendFailure(e));
            }
        }), BlockOptions.OnLoop(options, loop));

    /// <summary>Back to the client, from the relay's listening socket.</summary>
    public static ActionBlock<Datagram> ToClient(StageOptions options, TaskScheduler loop, Socket listener) =>
        new(UdpStageGuard.Isolate("udp.to_client", datagram =>
        {
            try
            {
                Sent(listener.SendTo(datagram.Data, SocketFlags.None, DualStack.For(listener, datagram.Client)), s_downstream, datagram);
                datagram.Return();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                UdpCounters.Drop(datagram, SendFailure(e));
            }
        }), BlockOptions.OnLoop(options, loop));

    /// <summary>
    /// A datagram's bytes as sent (its UDP payload: ciphertext toward the server or a Shadowsocks client, plaintext toward a
    /// destination, plaintext and its SOCKS5 header toward a SOCKS5 client), as a TCP direction counts what it sends; on a
    /// multi-user 2022 server, by the user of the datagram's session, as a TCP connection's bytes are by its user.
    /// </summary>
    private static void Sent(int bytes, KeyValuePair<string, object?> direction, Datagram datagram)
    {
        TrafficTotal.Add(bytes);
        if (datagram.Session?.User is { } user)
        {
            PipelineTelemetry.BytesRelayed.Add(bytes, direction, TransportTags.Udp, new KeyValuePair<string, object?>(TagNames.UserName, user.Name));
        }
        else
        {
            PipelineTelemetry.BytesRelayed.Add(bytes, direction, TransportTags.Udp);
        }
    }

    /// <summary>
    /// The drop's reason: "oversized" for a datagram the kernel refuses for its size (EMSGSIZE: sealed or with its
    /// SOCKS5 header it grew past 65,507 bytes), as the receive side names a datagram too large to relay; else "send failed".
    /// </summary>
    private static string SendFailure(Exception e) =>
        e is SocketException { SocketErrorCode: SocketError.MessageSize } ? "oversized" : "send failed";
}
