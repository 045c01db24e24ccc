using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class SocketIoTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task UnsentBytes_CountsWhatThePeerHasNotTaken_ZeroOnceItHas_AndMinusOneOnceClosed()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        Assert.Equal(0, SocketIo.UnsentBytes(writer));
        writer.Blocking = false;
        var block = new byte[64 << 10];
        var sent = 0;
        while (sent < (64 << 20) && writer.Send(block, SocketFlags.None, out var error) is var n && error == SocketError.Success)
        {
            sent += n;
        }

        var queued = SocketIo.UnsentBytes(writer);
        Assert.InRange(queued, 1, sent); // the reader reads nothing: its window is full and the rest waits here

        var buffer = new byte[1 << 20];
        for (var read = 0; read < sent; read += reader.Receive(buffer))
        {
        }

        // The last acknowledgements come a moment after the reads: waited for with a generous bound (200 turns of
        // 5 ms could pass before they were processed on a loaded machine).
        var deadline = DateTime.UtcNow + s_wait;
        while (SocketIo.UnsentBytes(writer) > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }

        Assert.Equal(0, SocketIo.UnsentBytes(writer));
        writer.Dispose();
        Assert.Equal(-1, SocketIo.UnsentBytes(writer));
    }

    [Fact]
    public async Task ReceiveAsync_TakesWhatIsThere_WaitsForMore_AndReturnsZeroAtTheEnd()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var buffer = new byte[16];
        writer.Send([1, 2]);
        await Task.Delay(50);
        Assert.Equal(2, await SocketIo.ReceiveAsync(reader, buffer, CancellationToken.None).AsTask().WaitAsync(s_wait));

        var waiting = SocketIo.ReceiveAsync(reader, buffer, CancellationToken.None).AsTask();
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted);
        writer.Send([3, 4, 5]);
        Assert.Equal(3, await waiting.WaitAsync(s_wait));
        Assert.Equal([3, 4, 5], buffer[..3]);

        writer.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await SocketIo.ReceiveAsync(reader, buffer, CancellationToken.None).AsTask().WaitAsync(s_wait));
    }

    [Fact]
    public async Task ReceiveAsync_ThrowsOnAReset_AndOnCancellation()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var cancel = new CancellationTokenSource();
        var cancelled = SocketIo.ReceiveAsync(reader, new byte[16], cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(s_wait));

        var waiting = SocketIo.ReceiveAsync(reader, new byte[16], CancellationToken.None).AsTask();
        writer.LingerState = new LingerOption(true, 0);
        writer.Dispose();
        var e = await Assert.ThrowsAsync<SocketException>(() => waiting.WaitAsync(s_wait));
        Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
    }

    [Fact]
    public async Task ReceiveRentedAsync_TakesWhatIsThere_WaitsForMore_AndEndsWithAnEmptyChunk()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        writer.Send([1, 2]);
        await Task.Delay(50);
        var first = await SocketIo.ReceiveRentedAsync(reader, 16, CancellationToken.None).AsTask().WaitAsync(s_wait);
        Assert.Equal([1, 2], first.Span.ToArray());
        Assert.True(first.Buffer.Length >= 16);
        first.Return();

        var waiting = SocketIo.ReceiveRentedAsync(reader, 2, CancellationToken.None).AsTask();
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted);
        writer.Send([3, 4, 5]);
        var second = await waiting.WaitAsync(s_wait);
        Assert.Equal([3, 4], second.Span.ToArray()); // at most the size asked for; the rest stays in the socket
        second.Return();
        var rest = await SocketIo.ReceiveRentedAsync(reader, 16, CancellationToken.None).AsTask().WaitAsync(s_wait);
        Assert.Equal([5], rest.Span.ToArray());
        rest.Return();

        writer.Shutdown(SocketShutdown.Send);
        var end = await SocketIo.ReceiveRentedAsync(reader, 16, CancellationToken.None).AsTask().WaitAsync(s_wait);
        Assert.Equal(0, end.Length);
        end.Return();
    }

    [Fact]
    public async Task ReceiveRentedAsync_ThrowsOnAReset_AndOnCancellation()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var cancel = new CancellationTokenSource();
        var cancelled = SocketIo.ReceiveRentedAsync(reader, 16, cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(s_wait));

        var waiting = SocketIo.ReceiveRentedAsync(reader, 16, CancellationToken.None).AsTask();
        writer.LingerState = new LingerOption(true, 0);
        writer.Dispose();
        var e = await Assert.ThrowsAsync<SocketException>(() => waiting.WaitAsync(s_wait));
        Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
    }

    [Theory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public async Task ConnectAsync_Connects_AndBytesFlowBothWays(AddressFamily family)
    {
        using var listener = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(family == AddressFamily.InterNetwork ? IPAddress.Loopback : IPAddress.IPv6Loopback, 0));
        listener.Listen();
        using var socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        await SocketIo.ConnectAsync(socket, listener.LocalEndPoint!, CancellationToken.None).AsTask().WaitAsync(s_wait);
        using var accepted = await listener.AcceptAsync().WaitAsync(s_wait);

        await SocketSend.SendAllAsync(socket, "hi"u8.ToArray(), CancellationToken.None);
        var buffer = new byte[4];
        Assert.Equal(2, await accepted.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(s_wait));
        accepted.Send("back"u8);
        Assert.Equal(4, await SocketIo.ReceiveAsync(socket, buffer, CancellationToken.None).AsTask().WaitAsync(s_wait));
        socket.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await accepted.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(s_wait));
    }

    [Fact]
    public async Task ConnectAsync_WhileTheHandshakeHangs_EndsWhenCancelled_AndLeavesNoWaitOnTheLoop()
    {
        // A listener that never accepts, with its accept queue full: the kernel drops further SYNs, so a connect to
        // it stays in progress (on loopback, without a packet leaving the machine).
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var fillers = new List<Socket>();
        try
        {
            Task connecting;
            using var cancel = new CancellationTokenSource();
            while (true)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(socket);
                connecting = SocketIo.ConnectAsync(socket, listener.LocalEndPoint!, cancel.Token).AsTask();
                // A connect the queue takes completes at once; one still pending after a second hangs. (300 ms could
                // pass before a completed connect was reported on a loaded machine, and that one was taken for hanging.)
                if (await Task.WhenAny(connecting, Task.Delay(TimeSpan.FromSeconds(1))) != connecting)
                {
                    break; // this one hangs
                }

                Assert.True(fillers.Count < 20, "every connect completed: the accept queue never filled");
            }

            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connecting.WaitAsync(s_wait));
            Assert.False(SocketReadiness.HasPendingWait(fillers[^1]), "the cancelled connect left its wait on the loop");
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Fact]
    public async Task ConnectAsync_ToAClosedPort_IsRefused()
    {
        var port = LoopbackPorts.Next(); // free, and nobody listens on it
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var e = await Assert.ThrowsAsync<SocketException>(
            () => SocketIo.ConnectAsync(socket, new IPEndPoint(IPAddress.Loopback, port), CancellationToken.None).AsTask().WaitAsync(s_wait));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }
}
