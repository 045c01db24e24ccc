using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class SocketReadinessTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_quiet = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task Readable_WaitsForData_AndReportsDataAlreadyThere()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;

        var waiting = SocketReadiness.ReadableAsync(reader, CancellationToken.None);
        await Task.Delay(s_quiet);
        Assert.False(waiting.IsCompleted);
        writer.Send([1, 2, 3]);
        await waiting.WaitAsync(s_wait);

        // Still unread: arming again reports it (level-triggered), so data that came before the wait is never missed.
        await SocketReadiness.ReadableAsync(reader, CancellationToken.None).WaitAsync(s_wait);
        Assert.Equal(3, reader.Receive(new byte[8]));
    }

    [Fact]
    public async Task Readable_ReportsTheEndOfTheStream_AndAReset()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        var waiting = SocketReadiness.ReadableAsync(reader, CancellationToken.None);
        writer.Shutdown(SocketShutdown.Send);
        await waiting.WaitAsync(s_wait);
        Assert.Equal(0, reader.Receive(new byte[8]));

        var (reader2, writer2) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var ___ = reader2;
        var waiting2 = SocketReadiness.ReadableAsync(reader2, CancellationToken.None);
        writer2.LingerState = new LingerOption(true, 0);
        writer2.Dispose(); // RST
        await waiting2.WaitAsync(s_wait);
        reader2.Blocking = false;
        reader2.Receive(new byte[8], 0, 8, SocketFlags.None, out var error);
        Assert.Equal(SocketError.ConnectionReset, error);
    }

    [Fact]
    public async Task Writable_WaitsForRoom_WhileAReadWaitOnTheSameSocketWaitsForData()
    {
        var (peer, socket) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = peer;
        using var __ = socket;
        socket.SendBufferSize = 16 * 1024;
        peer.ReceiveBufferSize = 16 * 1024;
        socket.Blocking = false;
        var block = new byte[64 * 1024];
        var queued = 0;
        while (true)
        {
            var sent = socket.Send(block, 0, block.Length, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                break;
            }

            Assert.Equal(SocketError.Success, error);
            queued += sent;
        }

        var readable = SocketReadiness.ReadableAsync(socket, CancellationToken.None);
        var writable = SocketReadiness.WritableAsync(socket, CancellationToken.None);
        await Task.Delay(s_quiet);
        Assert.False(writable.IsCompleted, "the send buffer is full");
        Assert.False(readable.IsCompleted, "nothing was sent back");

        var drained = 0;
        var buffer = new byte[64 * 1024];
        while (drained < queued)
        {
            drained += await peer.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(s_wait);
        }

        await writable.WaitAsync(s_wait);
        await Task.Delay(s_quiet);
        Assert.False(readable.IsCompleted, "room to send is not data to read");

        peer.Send([42]);
        await readable.WaitAsync(s_wait);
        Assert.Equal(1, socket.Receive(new byte[8]));
    }

    [Fact]
    public async Task Waits_ContinueOnThePool_NotOnTheLoopThread()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var waiting = SocketReadiness.ReadableAsync(reader, CancellationToken.None);
        var continuedOnLoop = waiting.ContinueWith(_ => SocketReadiness.Loop.IsLoopThread, TaskContinuationOptions.ExecuteSynchronously);
        writer.Send([1]);
        Assert.False(await continuedOnLoop.WaitAsync(s_wait));
    }

    [Fact]
    public async Task ACancelledWait_EndsCancelled_AndTheNextWaitIsServed()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        using var cancel = new CancellationTokenSource();
        var waiting = SocketReadiness.ReadableAsync(reader, cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(s_wait));

        var next = SocketReadiness.ReadableAsync(reader, CancellationToken.None);
        writer.Send([7]);
        await next.WaitAsync(s_wait);
        Assert.Equal(1, reader.Receive(new byte[8]));
    }

    [Fact]
    public async Task ASecondReadWaitOnOneSocket_IsRefused()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        using var cancel = new CancellationTokenSource();
        var first = SocketReadiness.ReadableAsync(reader, cancel.Token);
        Assert.Throws<InvalidOperationException>(() => { var second = SocketReadiness.ReadableAsync(reader, CancellationToken.None); });
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.WaitAsync(s_wait));
    }

    [Fact]
    public async Task ThousandsOfWaits_ReportedOrCancelled_LeaveNothingOnTheLoop()
    {
        var pairs = new List<(Socket Reader, Socket Writer)>();
        for (var i = 0; i < 20; i++)
        {
            pairs.Add(await SocketReceiveBridgeTests.ConnectedPairAsync());
        }

        try
        {
            var buffer = new byte[8];
            for (var round = 0; round < 100; round++)
            {
                using var cancel = new CancellationTokenSource();
                var waits = pairs.Select(p => SocketReadiness.ReadableAsync(p.Reader, cancel.Token)).ToArray();
                for (var i = 0; i < pairs.Count; i += 2)
                {
                    pairs[i].Writer.Send([(byte)round]); // half are answered...
                }

                for (var i = 0; i < pairs.Count; i += 2)
                {
                    await waits[i].WaitAsync(s_wait);
                    Assert.Equal(1, pairs[i].Reader.Receive(buffer));
                }

                await cancel.CancelAsync(); // ...and half are given up
                for (var i = 1; i < pairs.Count; i += 2)
                {
                    await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waits[i].WaitAsync(s_wait));
                }
            }

            // None of these 2,000 waits may remain, answered or given up. (Other tests share the loop, so this asks
            // each socket rather than counting the loop's registrations.)
            Assert.All(pairs, p => Assert.False(SocketReadiness.HasPendingWait(p.Reader)));
        }
        finally
        {
            foreach (var (reader, writer) in pairs)
            {
                reader.Dispose();
                writer.Dispose();
            }
        }
    }
}
