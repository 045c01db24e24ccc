using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// The UDP side of the multiplexer: each readiness of a UDP socket (on the relay's <see cref="EventLoop"/>) drains
/// the datagrams waiting in its kernel queue, each offered to the first stage as a <see cref="Datagram"/>. The
/// stages run on the same loop, after the drain: a burst is received, processed and sent in one turn.
/// A stage that is full (its bounded capacity reached: only a stage waiting on DNS can get there) drops the datagram
/// and counts it, as the kernel does when its queue is full.
/// </summary>
internal static unsafe class UdpReceiveLoop
{
    /// <summary>Datagrams taken per readiness, so one busy socket cannot hold the loop from the others.</summary>
    private const int MaxPerReadiness = 64;

    private const int ConnectionRefused = 111;

    /// <summary>Starts receiving on <paramref name="socket"/>; disposing the result stops it (before the socket closes).</summary>
    public static IDisposable Start(EventLoop loop, Socket socket, ITargetBlock<Datagram> target, Func<Datagram, bool>? admit, string direction)
    {
        var handle = socket.SafeHandle;
        var tag = new KeyValuePair<string, object?>(TagNames.Direction, direction);
        return loop.Readable(socket).Subscribe(_ => Drain(handle, target, admit, tag));
    }

    /// <summary>Dual-mode sockets report IPv4 peers as IPv4-mapped IPv6; the rest of the program wants them plain.</summary>
    public static IPEndPoint Normalize(IPEndPoint endPoint) =>
        endPoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port) : endPoint;

    private static void Drain(SafeHandle socket, ITargetBlock<Datagram> target, Func<Datagram, bool>? admit, KeyValuePair<string, object?> tag)
    {
        var address = stackalloc byte[NativeSocketAddress.MaxSize];
        for (var i = 0; i < MaxPerReadiness; i++)
        {
            var buffer = Datagram.RentBuffer();
            var addressLength = NativeSocketAddress.MaxSize;
            nint received;
            try
            {
                fixed (byte* area = &buffer[Datagram.Headroom])
                {
                    received = Epoll.ReceiveFrom(socket, area, Datagram.MaxPayload + 1, Epoll.DontWait, address, ref addressLength);
                }
            }
            catch (ObjectDisposedException)
            {
                Datagram.Wrap(buffer, 0, null!).Return();
                return;
            }

            if (received < 0)
            {
                Datagram.Wrap(buffer, 0, null!).Return();
                if (Marshal.GetLastPInvokeError() == ConnectionRefused)
                {
                    continue; // an ICMP error for an earlier send: not fatal for the socket
                }

                return; // nothing more waiting (EAGAIN), or the socket is gone
            }

            var client = NativeSocketAddress.ToEndPoint(new ReadOnlySpan<byte>(address, addressLength));
            var datagram = Datagram.Wrap(buffer, (int)received, client!);
            if (client is null || datagram.Length > Datagram.MaxPayload || (admit is not null && !admit(datagram)))
            {
                UdpCounters.Drop(datagram, client is null ? "unknown address family" : datagram.Length > Datagram.MaxPayload ? "oversized" : "no association");
                continue;
            }

            PipelineTelemetry.UdpDatagrams.Add(1, tag);
            if (!target.Post(datagram))
            {
                UdpCounters.Drop(datagram, "stage full");
            }
        }
    }
}
