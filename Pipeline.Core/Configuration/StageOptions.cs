namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>How one Dataflow stage runs: how many items at once, and how many may wait in it.</summary>
/// <param name="MaxParallelism">The block's MaxDegreeOfParallelism (data stages are per connection and always 1).</param>
/// <param name="BoundedCapacity">The block's BoundedCapacity: items queued before senders wait.</param>
internal sealed record StageOptions(int MaxParallelism, int BoundedCapacity);
