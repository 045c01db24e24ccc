using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Connections;

/// <summary>
/// A socket set to reset on close, closed through <see cref="ResetAfterDelivery"/> in manual time: at once when
/// nothing is queued toward its peer; otherwise once its peer has read what was queued (every byte arrives, then the
/// reset), or once the queue has not shrunk for the patience given, or once its peer has gone. No sweep is pending
/// when nothing waits.
/// </summary>
public sealed class ResetAfterDeliveryTests
{
    private static readonly TimeSpan s_patience = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task NothingQueued_ClosesAtOnce_WithAReset()
    {
        var time = new ManualTimeProvider();
        var closer = new ResetAfterDelivery(time);
        var (side, peer) = await PairAsync();
        using var _ = peer;
        side.Send([1, 2, 3]);
        await WhileAsync(() => SocketIo.UnsentBytes(side) > 0); // loopback acknowledges at once
        side.LingerState = new LingerOption(true, 0);

        closer.Close(side, s_patience);

        Assert.Throws<ObjectDisposedException>(() => side.Available);
        Assert.Equal(0, time.Pending);
        var (received, end) = await ReadToTheEndAsync(peer);
        Assert.Equal(3, received);
        Assert.Equal(SocketError.ConnectionReset, end);
    }

    [Fact]
    public async Task BytesQueued_WaitUntilThePeerHasThem_ThenTheResetFollows()
    {
        var (time, closer, side, peer, sent) = await WaitingAsync();
        using var _ = peer;

        Assert.Equal(1, closer.Count);
        Assert.Equal(1, time.Pending);
        time.Advance(ResetAfterDelivery.Period);
        Assert.Equal(0, side.Available); // still open: its peer has read nothing
        Assert.Equal(1, closer.Count);

        var reading = ReadToTheEndAsync(peer);
        await WhileAsync(() => SocketIo.UnsentBytes(side) > 0);
        time.Advance(ResetAfterDelivery.Period);

        Assert.Equal(0, closer.Count);
        Assert.Equal(0, time.Pending);
        var (received, end) = await reading;
        Assert.Equal(sent, received); // every byte, then the reset (a reset at once would have discarded the queue)
        Assert.Equal(SocketError.ConnectionReset, end);
    }

    [Fact]
    public async Task APeerThatReadsNothing_IsResetOnceTheQueueHasNotShrunkForThePatience()
    {
        var (time, closer, side, peer, sent) = await WaitingAsync();
        using var _ = peer;

        time.Advance(s_patience - ResetAfterDelivery.Period);
        Assert.Equal(1, closer.Count);
        for (var waited = TimeSpan.Zero; waited < s_patience; waited += ResetAfterDelivery.Period)
        {
            time.Advance(ResetAfterDelivery.Period);
        }

        Assert.Equal(0, closer.Count);
        Assert.Equal(0, time.Pending);
        Assert.Throws<ObjectDisposedException>(() => side.Available);
        var (received, end) = await ReadToTheEndAsync(peer);
        Assert.InRange(received, 0, sent - 1); // the queue went with the reset
        Assert.Equal(SocketError.ConnectionReset, end);
    }

    [Fact]
    public async Task APeerThatResets_EndsTheWait_AtTheNextSweep()
    {
        var (time, closer, side, peer, _) = await WaitingAsync();

        peer.LingerState = new LingerOption(true, 0);
        peer.Close();
        Assert.True(side.Poll(1_000_000, SelectMode.SelectError) || side.Poll(0, SelectMode.SelectRead));
        time.Advance(ResetAfterDelivery.Period);

        Assert.Equal(0, closer.Count);
        Assert.Equal(0, time.Pending);
        Assert.Throws<ObjectDisposedException>(() => side.Available);
    }

    [Fact]
    public async Task APeerThatResets_EndsTheWait_EvenWhenSomethingElseTookItsError()
    {
        // After the peer's reset the queue's count stays as it was (write_seq - snd_una), and SO_ERROR is cleared by
        // whoever reads it first (the half-open sweep, a pump's last receive): the connection's state still tells.
        var (time, closer, side, peer, _) = await WaitingAsync();

        peer.LingerState = new LingerOption(true, 0);
        peer.Close();
        Assert.True(side.Poll(1_000_000, SelectMode.SelectError) || side.Poll(0, SelectMode.SelectRead));
        Assert.True(SocketIo.PendingError(side) > 0); // taken, as another reader would
        Assert.True(SocketIo.UnsentBytes(side) > 0);
        time.Advance(ResetAfterDelivery.Period);

        Assert.Equal(0, closer.Count);
        Assert.Throws<ObjectDisposedException>(() => side.Available);
    }

    /// <summary>A socket with bytes queued toward a peer that reads nothing, set to reset, handed to a closer in manual time.</summary>
    private static async Task<(ManualTimeProvider Time, ResetAfterDelivery Closer, Socket Side, Socket Peer, int Sent)> WaitingAsync()
    {
        var time = new ManualTimeProvider();
        var closer = new ResetAfterDelivery(time);
        var (side, peer) = await PairAsync();
        var sent = FillSendQueue(side);
        side.LingerState = new LingerOption(true, 0);
        closer.Close(side, s_patience);
        return (time, closer, side, peer, sent);
    }

    /// <summary>Sends without blocking until the socket takes no more (its peer reads nothing); returns how much it took.</summary>
    private static int FillSendQueue(Socket side)
    {
        side.Blocking = false;
        var block = new byte[16 << 10];
        var sent = 0;
        for (var i = 0; i < 10_000; i++)
        {
            var n = side.Send(block, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                break;
            }

            Assert.Equal(SocketError.Success, error);
            sent += n;
        }

        Assert.True(SocketIo.UnsentBytes(side) > 0);
        return sent;
    }

    private static async Task<(int Received, SocketError End)> ReadToTheEndAsync(Socket socket)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[64 << 10];
        var received = 0;
        while (true)
        {
            try
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
                if (n == 0)
                {
                    return (received, SocketError.Success);
                }

                received += n;
            }
            catch (SocketException e)
            {
                return (received, e.SocketErrorCode);
            }
        }
    }

    /// <summary>Waits (bounded) while <paramref name="condition"/> holds.</summary>
    private static async Task WhileAsync(Func<bool> condition)
    {
        for (var i = 0; i < 1000 && condition(); i++)
        {
            await Task.Delay(5);
        }

        Assert.False(condition());
    }

    private static async Task<(Socket Side, Socket Peer)> PairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.ReceiveBufferSize = 8 << 10; // inherited by the peer: a small window, set before connecting
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var side = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await side.ConnectAsync(listener.LocalEndPoint!);
        return (side, await listener.AcceptAsync());
    }
}
