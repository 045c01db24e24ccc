using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Scheduling;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>Turns a stage's options into Dataflow block options.</summary>
internal static class BlockOptions
{
    /// <summary>A shared connection-level stage: parallel across connections, order irrelevant.</summary>
    public static ExecutionDataflowBlockOptions Shared(StageOptions options, CancellationToken cancellationToken = default) => new()
    {
        MaxDegreeOfParallelism = options.MaxParallelism,
        BoundedCapacity = options.BoundedCapacity,
        EnsureOrdered = false,
        CancellationToken = cancellationToken,
    };

    /// <summary>
    /// A UDP stage: its work runs on the relay's event loop (<paramref name="loop"/>), beside the sockets, so a
    /// datagram goes from receive to send on one thread. Parallelism still bounds how many datagrams a stage holds in
    /// work at once, which matters where the work waits (a DNS lookup); order is irrelevant.
    /// </summary>
    public static ExecutionDataflowBlockOptions OnLoop(StageOptions options, TaskScheduler loop) => new()
    {
        MaxDegreeOfParallelism = options.MaxParallelism,
        BoundedCapacity = options.BoundedCapacity,
        EnsureOrdered = false,
        TaskScheduler = loop,
    };

    /// <summary>
    /// A per-connection data stage: one chunk at a time, in order. One message per task: a single-threaded
    /// synchronous block that has handled one message and finds its queue empty otherwise "keeps alive", spinning with
    /// Thread.Yield for the next one (Dataflow's TryKeepAliveUntil). Every fresh per-burst block did that once, and
    /// perf showed sched_yield at a quarter of the local's CPU under many short connections.
    /// No cancellation token: the stages check the connection's token themselves (a message that finds it cancelled
    /// is dropped: its delegate throws <see cref="OperationCanceledException"/>, which Dataflow skips), and a torn-down
    /// connection's blocks are left to the collector. Wiring a token into each per-burst block registered and
    /// unregistered a callback on the connection's token source (a lock and an allocation each time): 1 % of the
    /// samples under many short connections.
    /// <para>
    /// Their tasks run on <see cref="CallerDrainScheduler"/>: a chunk the pump hands over in a scope (the end of a
    /// burst, data a handshake stage held) goes through the blocks on the pump's thread; a bulk transfer's chunks go to
    /// the pool, so that reading, ciphering and sending overlap.
    /// </para>
    /// </summary>
    public static ExecutionDataflowBlockOptions Ordered(StageOptions options) => new()
    {
        MaxDegreeOfParallelism = 1,
        MaxMessagesPerTask = 1,
        BoundedCapacity = options.BoundedCapacity,
        EnsureOrdered = true,
        SingleProducerConstrained = true,
        TaskScheduler = CallerDrainScheduler.Instance,
    };
}
