using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// The UDP side of the multiplexer: each readiness of a UDP socket becomes a <see cref="Datagram"/> offered to the
/// first stage. The next receive is issued only after the stage accepted the datagram, so a slow pipeline leaves
/// datagrams in the kernel's queue (which drops when full, as UDP should) instead of growing memory here.
/// </summary>
internal static class UdpReceiveLoop
{
    public static async Task RunAsync(
        Socket socket, ITargetBlock<Datagram> target, Func<Datagram, bool>? admit, string direction, CancellationToken cancellationToken)
    {
        EndPoint any = socket.AddressFamily == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
        while (!cancellationToken.IsCancellationRequested)
        {
            var buffer = Datagram.RentBuffer();
            SocketReceiveFromResult result;
            try
            {
                result = await socket.ReceiveFromAsync(Datagram.ReceiveArea(buffer), SocketFlags.None, any, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused or SocketError.MessageSize)
            {
                // An ICMP error for an earlier send, or an oversized datagram: not fatal for the socket.
                Datagram.Wrap(buffer, 0, null!).Return();
                continue;
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                Datagram.Wrap(buffer, 0, null!).Return();
                return;
            }

            var datagram = Datagram.Wrap(buffer, result.ReceivedBytes, Normalize((IPEndPoint)result.RemoteEndPoint));
            if (datagram.Length > Datagram.MaxPayload || (admit is not null && !admit(datagram)))
            {
                UdpCounters.Drop(datagram, datagram.Length > Datagram.MaxPayload ? "oversized" : "no association");
                continue;
            }

            PipelineTelemetry.UdpDatagrams.Add(1, new KeyValuePair<string, object?>(TagNames.Direction, direction));
            if (!await target.SendAsync(datagram, cancellationToken).ConfigureAwait(false))
            {
                datagram.Return();
                return;
            }
        }
    }

    /// <summary>Dual-mode sockets report IPv4 peers as IPv4-mapped IPv6; the rest of the program wants them plain.</summary>
    public static IPEndPoint Normalize(IPEndPoint endPoint) =>
        endPoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port) : endPoint;
}
