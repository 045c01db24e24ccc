using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class SocketReceiveBridgeTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task RunAsync_DeliversBytesInOrderAndCompletesTargetOnFin()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var target = new BufferBlock<Chunk>();
        var pump = SocketReceiveBridge.RunAsync(reader, target, 1000, _ => { }, CancellationToken.None);

        var payload = Enumerable.Range(0, 50_000).Select(i => (byte)i).ToArray();
        await writer.SendAsync(payload, SocketFlags.None);
        writer.Shutdown(SocketShutdown.Send);

        Assert.Equal(ReceiveOutcome.EndOfStream, await pump.WaitAsync(s_wait));
        var received = new List<byte>();
        while (target.TryReceive(out var chunk))
        {
            Assert.InRange(chunk.Length, 1, 1000);
            received.AddRange(chunk.Span.ToArray());
            chunk.Return();
        }

        Assert.Equal(payload, received);
        await target.Completion.WaitAsync(s_wait);
    }

    [Fact]
    public async Task RunAsync_StopsReadingWhileTargetIsFull_Backpressure()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var target = new BufferBlock<Chunk>(new DataflowBlockOptions { BoundedCapacity = 1 });
        var chunks = 0;
        using var cancel = new CancellationTokenSource();
        var pump = SocketReceiveBridge.RunAsync(reader, target, 1024, _ => Interlocked.Increment(ref chunks), cancel.Token);

        // Write far more than one chunk plus the kernel's buffers can hold: the writer must stall.
        writer.Blocking = false;
        var block = new byte[64 * 1024];
        long written = 0;
        for (var i = 0; i < 2000; i++)
        {
            try
            {
                written += writer.Send(block);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
            {
                break;
            }
        }

        await Task.Delay(200);
        // One chunk sits in the block and the bridge holds at most one more while it waits on SendAsync.
        Assert.InRange(Volatile.Read(ref chunks), 1, 2);
        Assert.True(written < 2000L * block.Length, "the writer never stalled: nothing pushed back");
        Assert.False(pump.IsCompleted);

        // Draining the block lets the bridge go on.
        var drained = 0;
        for (var i = 0; i < 20 && target.TryReceive(out var chunk) | await Task.Delay(10).ContinueWith(_ => true); i++)
        {
            while (target.TryReceive(out chunk))
            {
                drained += chunk.Length;
                chunk.Return();
            }
        }

        Assert.True(Volatile.Read(ref chunks) > 2);
        cancel.Cancel();
        Assert.Equal(ReceiveOutcome.Cancelled, await pump.WaitAsync(s_wait));
    }

    [Fact]
    public async Task RunAsync_ReturnsDeclined_WhenTargetFaults()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var target = new BufferBlock<Chunk>();
        ((IDataflowBlock)target).Fault(new InvalidOperationException("test"));
        var pump = SocketReceiveBridge.RunAsync(reader, target, 1024, _ => { }, CancellationToken.None);
        await writer.SendAsync(new byte[10], SocketFlags.None);
        Assert.Equal(ReceiveOutcome.Declined, await pump.WaitAsync(s_wait));
    }

    internal static async Task<(Socket Reader, Socket Writer)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var writer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await writer.ConnectAsync(listener.LocalEndPoint!);
        var reader = await listener.AcceptAsync();
        return (reader, writer);
    }
}
