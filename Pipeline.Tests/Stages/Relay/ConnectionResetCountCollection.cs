namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// Tests that count <c>pipeline.connections_reset</c> run alone: the counter is process-wide, and another test's
/// resets in between would be counted with theirs.
/// </summary>
[CollectionDefinition(nameof(ConnectionResetCountCollection), DisableParallelization = true)]
public sealed class ConnectionResetCountCollection;
