using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;

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

    /// <summary>A per-connection data stage: one chunk at a time, in order.</summary>
    public static ExecutionDataflowBlockOptions Ordered(StageOptions options, CancellationToken cancellationToken) => new()
    {
        MaxDegreeOfParallelism = 1,
        BoundedCapacity = options.BoundedCapacity,
        EnsureOrdered = true,
        SingleProducerConstrained = true,
        CancellationToken = cancellationToken,
    };
}
