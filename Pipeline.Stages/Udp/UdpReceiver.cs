using System.Net.Sockets;
using System.Reactive.Disposables;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// The UDP side of the multiplexer for one socket: each readiness (on the relay's <see cref="EventLoop"/>) drains the
/// datagrams waiting in the kernel's queue, each offered to the first stage as a <see cref="Datagram"/>. The stages
/// run on the same loop after the drain, so a burst is received, processed and sent in one turn.
/// Backpressure: when the first stage is full (a burst from many sockets in one turn, or a stage waiting on DNS), the
/// datagram in hand waits for room (<c>SendAsync</c>) and the socket leaves the epoll set meanwhile; the rest wait in
/// the kernel's queue (4 MiB, which drops when full, as UDP should), and nothing is dropped here.
/// </summary>
internal sealed class UdpReceiver : IDisposable
{
    /// <summary>Datagrams taken per readiness, so one busy socket cannot hold the loop from the others.</summary>
    private const int MaxPerReadiness = 64;

    private const int ConnectionRefused = 111;

    private readonly EventLoop _loop;
    private readonly Socket _socket;
    private readonly SafeHandle _handle;
    private readonly ITargetBlock<Datagram> _target;
    private readonly Func<Datagram, bool>? _admit;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly SerialDisposable _readiness = new();

    private UdpReceiver(EventLoop loop, Socket socket, ITargetBlock<Datagram> target, Func<Datagram, bool>? admit, string direction)
    {
        _loop = loop;
        _socket = socket;
        _handle = socket.SafeHandle;
        _target = target;
        _admit = admit;
        _tag = new KeyValuePair<string, object?>(TagNames.Direction, direction);
    }

    /// <summary>Starts receiving on <paramref name="socket"/>; disposing the result stops it (before the socket closes).</summary>
    /// <param name="admit">Which datagrams may enter (false: dropped as "no association"); null admits all.</param>
    public static UdpReceiver Start(EventLoop loop, Socket socket, ITargetBlock<Datagram> target, Func<Datagram, bool>? admit, string direction)
    {
        var receiver = new UdpReceiver(loop, socket, target, admit, direction);
        receiver.Watch();
        return receiver;
    }

    public void Dispose() => _readiness.Dispose();

    private void Watch() => _readiness.Disposable = _loop.Readable(_socket).Subscribe(_ => Drain());

    private unsafe void Drain()
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
                    received = Epoll.ReceiveFrom(_handle, area, Datagram.MaxPayload + 1, Epoll.DontWait, address, ref addressLength);
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
            if (client is null || datagram.Length > Datagram.MaxPayload || (_admit is not null && !_admit(datagram)))
            {
                UdpCounters.Drop(datagram, client is null ? "unknown address family" : datagram.Length > Datagram.MaxPayload ? "oversized" : "no association");
                continue;
            }

            PipelineTelemetry.UdpDatagrams.Add(1, _tag);
            if (!_target.Post(datagram))
            {
                _readiness.Disposable = Disposable.Empty; // out of the epoll set until the stage has room
                _ = WaitForRoomAsync(datagram);
                return;
            }
        }
    }

    /// <summary>Offers the datagram until the stage takes it, then watches the socket again (what waited is reported at once).</summary>
    private async Task WaitForRoomAsync(Datagram datagram)
    {
        bool accepted;
        try
        {
            accepted = await _target.SendAsync(datagram).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
        {
            accepted = false;
        }

        if (!accepted)
        {
            UdpCounters.Drop(datagram, "stage closed");
            return;
        }

        if (!_readiness.IsDisposed)
        {
            try
            {
                Watch();
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException)
            {
                // The socket closed meanwhile (the entry expired): nothing more to receive.
            }
        }
    }
}
