using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class SocketReceiveBridgeTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task RunAsync_DeliversBytesInOrderAcrossBurstsAndDrainsOnFin()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var inFlight = new ChunksInFlight(new ReadBudget(ReadBudget.DefaultBytes));
        var received = new ConcurrentQueue<byte>();
        var chains = 0;
        var firstChain = new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously);
        ChunkChain Open()
        {
            Interlocked.Increment(ref chains);
            var sink = new ActionBlock<Chunk>(chunk =>
            {
                foreach (var b in chunk.Span)
                {
                    received.Enqueue(b);
                }

                chunk.Return();
                inFlight.Done();
            }, new ExecutionDataflowBlockOptions { BoundedCapacity = 2 });
            firstChain.TrySetResult(sink.Completion);
            return new ChunkChain(sink, sink.Completion);
        }

        var pump = SocketReceiveBridge.RunAsync(reader, Open, null, inFlight, static b => Math.Min(b, 1000), _ => { }, CancellationToken.None);
        var payload = Enumerable.Range(0, 50_000).Select(i => (byte)i).ToArray();
        await writer.SendAsync(payload.AsMemory(0, 20_000), SocketFlags.None);

        // A quiet gap: the second burst goes once the first burst's chain is drained and dropped (a fixed 300 ms was
        // not always enough on a loaded machine, and the two bursts then shared one chain).
        await (await firstChain.Task.WaitAsync(s_wait)).WaitAsync(s_wait);
        await writer.SendAsync(payload.AsMemory(20_000), SocketFlags.None);
        writer.Shutdown(SocketShutdown.Send);

        Assert.Equal(ReceiveOutcome.EndOfStream, await pump.WaitAsync(s_wait));
        Assert.Equal(payload, received.ToArray());
        Assert.True(chains >= 2, $"expected a new chain after the quiet gap, saw {chains}");
    }

    [Fact]
    public async Task RunAsync_ReadsSmallFirst_GrowsWhenAReadFills_AndStartsSmallAgainAfterAQuietSpell()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        const int chunkSize = 64 * 1024;
        var inFlight = new ChunksInFlight(new ReadBudget(ReadBudget.DefaultBytes));
        var lengths = new ConcurrentQueue<int>();
        var total = 0L;
        var chain = Task.CompletedTask;
        ChunkChain Open()
        {
            var sink = new ActionBlock<Chunk>(chunk =>
            {
                lengths.Enqueue(chunk.Length);
                Interlocked.Add(ref total, chunk.Length);
                chunk.Return();
                inFlight.Done();
            }, new ExecutionDataflowBlockOptions { BoundedCapacity = 2 });
            Volatile.Write(ref chain, sink.Completion);
            return new ChunkChain(sink, sink.Completion);
        }

        var pump = SocketReceiveBridge.RunAsync(reader, Open, null, inFlight, static b => Math.Min(b, chunkSize), _ => { }, CancellationToken.None);
        var bulk = new byte[1024 * 1024];

        async Task<int[]> BurstAsync(long expectedTotal)
        {
            lengths.Clear();
            await writer.SendAsync(bulk, SocketFlags.None);
            var deadline = DateTime.UtcNow + s_wait;
            while (Interlocked.Read(ref total) < expectedTotal && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            // Quiet: the pump finds nothing more and lets the burst's chain drain (waited for, not a fixed 300 ms: on a
            // loaded machine the next burst could come before the pump had seen the gap, and not start small).
            await Volatile.Read(ref chain).WaitAsync(s_wait);
            return [.. lengths];
        }

        foreach (var expected in new[] { bulk.Length, 2L * bulk.Length })
        {
            var burst = await BurstAsync(expected);
            Assert.InRange(burst[0], 1, SocketReceiveBridge.FirstReadSize);
            Assert.Contains(burst, length => length > SocketReceiveBridge.FirstReadSize);
            Assert.All(burst, length => Assert.InRange(length, 1, chunkSize));
        }

        writer.Shutdown(SocketShutdown.Send);
        Assert.Equal(ReceiveOutcome.EndOfStream, await pump.WaitAsync(s_wait));
        Assert.Equal(2L * bulk.Length, Interlocked.Read(ref total));
    }

    [Fact]
    public async Task RunAsync_ABusyPumpCountsItselfInTheBudget_AndReadsTheShareItGives()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        // 1 MiB shared with 63 other busy pumps: 16 KiB each, the smallest read.
        var budget = new ReadBudget(1024 * 1024);
        for (var i = 0; i < 63; i++)
        {
            budget.Enter();
        }

        var inFlight = new ChunksInFlight(budget);
        var lengths = new ConcurrentQueue<int>();
        var total = 0L;
        var busyWhileReading = 0;
        var chain = Task.CompletedTask;
        ChunkChain Open()
        {
            var sink = new ActionBlock<Chunk>(chunk =>
            {
                lengths.Enqueue(chunk.Length);
                Interlocked.Add(ref total, chunk.Length);
                Volatile.Write(ref busyWhileReading, Math.Max(Volatile.Read(ref busyWhileReading), budget.Busy));
                chunk.Return();
                inFlight.Done();
            }, new ExecutionDataflowBlockOptions { BoundedCapacity = 2 });
            Volatile.Write(ref chain, sink.Completion);
            return new ChunkChain(sink, sink.Completion);
        }

        var pump = SocketReceiveBridge.RunAsync(reader, Open, null, inFlight, static b => b, _ => { }, CancellationToken.None);
        var bulk = new byte[2 * 1024 * 1024];
        await writer.SendAsync(bulk, SocketFlags.None);
        var deadline = DateTime.UtcNow + s_wait;
        while (Interlocked.Read(ref total) < bulk.Length && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(bulk.Length, Interlocked.Read(ref total));
        Assert.Equal(64, Volatile.Read(ref busyWhileReading));
        Assert.All(lengths, length => Assert.InRange(length, 1, ReadBudget.Smallest));
        Assert.Contains(lengths, length => length > SocketReceiveBridge.FirstReadSize);

        // Quiet: the pump leaves the busy count as it finds nothing more, before it lets the burst's chain go (waited
        // for, not a fixed 300 ms, which a loaded machine could outlast).
        await Volatile.Read(ref chain).WaitAsync(s_wait);
        Assert.Equal(63, budget.Busy);
        await writer.SendAsync(bulk, SocketFlags.None);
        writer.Shutdown(SocketShutdown.Send);
        Assert.Equal(ReceiveOutcome.EndOfStream, await pump.WaitAsync(s_wait));
        Assert.Equal(63, budget.Busy); // and not after the end either
    }

    [Fact]
    public async Task RunAsync_StopsReadingWhileChainIsFull_Backpressure()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        using var gate = new SemaphoreSlim(0);
        var inFlight = new ChunksInFlight(new ReadBudget(ReadBudget.DefaultBytes));
        var chunks = 0;
        using var cancel = new CancellationTokenSource();
        var pump = SocketReceiveBridge.RunAsync(reader, () => GatedChain(gate, inFlight, capacity: 1), null, inFlight, static b => Math.Min(b, 1024), _ => Interlocked.Increment(ref chunks), cancel.Token);

        // Write far more than a chunk plus the kernel's buffers can hold: the writer must stall.
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

        // One chunk is being processed and the bridge holds one more while it waits on SendAsync: waited for (on a
        // loaded machine the pump may not have read them within a fixed wait), then a moment to see it read no more.
        await UntilAsync(() => Volatile.Read(ref chunks) >= 2);
        await Task.Delay(200);
        Assert.InRange(Volatile.Read(ref chunks), 1, 2);
        Assert.True(written < 2000L * block.Length, "the writer never stalled: nothing pushed back");
        Assert.False(pump.IsCompleted);

        // Releasing the consumer lets the bridge go on.
        gate.Release(100);
        await UntilAsync(() => Volatile.Read(ref chunks) > 2);
        Assert.True(Volatile.Read(ref chunks) > 2);
        cancel.Cancel();
        gate.Release(10_000);
        Assert.Equal(ReceiveOutcome.Cancelled, await pump.WaitAsync(s_wait));
    }

    [Fact]
    public async Task RunAsync_OverBudget_ReadsItsNextChunkOnlyOnceItsChainHasSentTheLast()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        // A budget of one smallest buffer: a second chunk in flight never fits.
        var budget = new ReadBudget(ReadBudget.Smallest);
        var inFlight = new ChunksInFlight(budget);
        using var gate = new SemaphoreSlim(0);
        var chunks = 0;
        var total = 0L;
        var mostInFlight = 0;
        ChunkChain Open()
        {
            // Room for several chunks: only the budget keeps the pump at one.
            var sink = new ActionBlock<Chunk>(async chunk =>
            {
                Volatile.Write(ref mostInFlight, Math.Max(Volatile.Read(ref mostInFlight), inFlight.Count));
                await gate.WaitAsync();
                Interlocked.Add(ref total, chunk.Length);
                chunk.Return();
                inFlight.Done();
            }, new ExecutionDataflowBlockOptions { BoundedCapacity = 8 });
            return new ChunkChain(sink, sink.Completion);
        }

        var pump = SocketReceiveBridge.RunAsync(reader, Open, null, inFlight, static b => b, _ => Interlocked.Increment(ref chunks), CancellationToken.None);
        var bulk = new byte[256 * 1024];
        var sending = writer.SendAsync(bulk, SocketFlags.None);
        await UntilAsync(() => Volatile.Read(ref chunks) >= 1); // the first read, waited for: not within a fixed time under load
        await Task.Delay(300); // and a moment to see that no second read follows it
        Assert.Equal(1, Volatile.Read(ref chunks)); // read, handed over, and waiting for it to be sent
        Assert.Equal(1, budget.InFlight);

        gate.Release(10_000);
        await sending.WaitAsync(s_wait);
        var deadline = DateTime.UtcNow + s_wait;
        while (Interlocked.Read(ref total) < bulk.Length && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(bulk.Length, Interlocked.Read(ref total));
        Assert.Equal(1, Volatile.Read(ref mostInFlight));
        writer.Shutdown(SocketShutdown.Send);
        Assert.Equal(ReceiveOutcome.EndOfStream, await pump.WaitAsync(s_wait));
        Assert.Equal(0, budget.InFlight);
    }

    [Fact]
    public async Task RunAsync_TornDown_GivesBackTheChunksItsChainNeverSent()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var budget = new ReadBudget(ReadBudget.DefaultBytes);
        var inFlight = new ChunksInFlight(budget);
        using var gate = new SemaphoreSlim(0);
        using var cancel = new CancellationTokenSource();
        var pump = SocketReceiveBridge.RunAsync(reader, () => GatedChain(gate, inFlight, capacity: 2), null, inFlight, static b => Math.Min(b, 1024), _ => { }, cancel.Token);
        await writer.SendAsync(new byte[64 * 1024], SocketFlags.None);
        var deadline = DateTime.UtcNow + s_wait;
        while (budget.InFlight < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(3, budget.InFlight); // one being sent, one queued, one the pump holds while the chain is full
        cancel.Cancel();
        Assert.Equal(ReceiveOutcome.Cancelled, await pump.WaitAsync(s_wait));
        Assert.Equal(0, budget.InFlight);

        gate.Release(10); // the stuck chain finishes late: already given back, not counted twice
        await Task.Delay(200);
        Assert.Equal(0, budget.InFlight);
    }

    [Fact]
    public async Task RunAsync_ReturnsFaulted_WhenChainDeclines()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var target = new BufferBlock<Chunk>();
        ((IDataflowBlock)target).Fault(new InvalidOperationException("test"));
        var pump = SocketReceiveBridge.RunAsync(reader, () => new ChunkChain(target, target.Completion), null, new ChunksInFlight(new ReadBudget(ReadBudget.DefaultBytes)), static b => Math.Min(b, 1024), _ => { }, CancellationToken.None);
        await writer.SendAsync(new byte[10], SocketFlags.None);
        Assert.Equal(ReceiveOutcome.Faulted, await pump.WaitAsync(s_wait));
    }

    [Fact]
    public async Task RunAsync_OnAReset_ReturnsSocketError_OnlyOnceItsChainHasTakenWhatCameBeforeIt()
    {
        // The chain is slow (each chunk waits for a gate): the reset is read while chunks are still in it. The pump
        // lets them through before it reports the reset, as it does before a FIN, so the relay's reset comes after them.
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var inFlight = new ChunksInFlight(new ReadBudget(ReadBudget.DefaultBytes));
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = 0;
        ChunkChain Open()
        {
            var sink = new ActionBlock<Chunk>(async chunk =>
            {
                await gate.Task;
                Interlocked.Add(ref received, chunk.Length);
                chunk.Return();
                inFlight.Done();
            }, new ExecutionDataflowBlockOptions { BoundedCapacity = 64 });
            return new ChunkChain(sink, sink.Completion);
        }

        var pump = SocketReceiveBridge.RunAsync(reader, Open, null, inFlight, static b => Math.Min(b, 1000), _ => { }, CancellationToken.None);
        await writer.SendAsync(new byte[20_000], SocketFlags.None);
        await Task.Delay(200); // read into the waiting chain
        writer.LingerState = new LingerOption(true, 0);
        writer.Close(); // RST
        await Task.Delay(200);
        Assert.False(pump.IsCompleted, "the pump reported the reset while its chain still held the bytes before it");

        gate.SetResult();
        Assert.Equal(ReceiveOutcome.SocketError, await pump.WaitAsync(s_wait));
        Assert.Equal(20_000, Volatile.Read(ref received));
    }

    [Fact]
    public async Task RunAsync_IdleConnection_HoldsNoChain()
    {
        var (reader, writer) = await ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var opened = 0;
        using var cancel = new CancellationTokenSource();
        var pump = SocketReceiveBridge.RunAsync(reader, () =>
        {
            Interlocked.Increment(ref opened);
            var sink = new ActionBlock<Chunk>(c => c.Return());
            return new ChunkChain(sink, sink.Completion);
        }, null, new ChunksInFlight(new ReadBudget(ReadBudget.DefaultBytes)), static b => Math.Min(b, 1024), _ => { }, cancel.Token);
        await Task.Delay(200);
        Assert.Equal(0, opened);
        cancel.Cancel();
        Assert.Equal(ReceiveOutcome.Cancelled, await pump.WaitAsync(s_wait));
    }

    /// <summary>Returns once <paramref name="condition"/> holds, or after <see cref="s_wait"/> (the caller asserts).</summary>
    private static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + s_wait;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
    }

    /// <summary>A chain of one block that sends (drops) each chunk only when <paramref name="gate"/> lets it, holding up to <paramref name="capacity"/>.</summary>
    private static ChunkChain GatedChain(SemaphoreSlim gate, ChunksInFlight inFlight, int capacity)
    {
        var gated = new ActionBlock<Chunk>(async chunk =>
        {
            await gate.WaitAsync();
            chunk.Return();
            inFlight.Done();
        }, new ExecutionDataflowBlockOptions { BoundedCapacity = capacity });
        return new ChunkChain(gated, gated.Completion);
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
