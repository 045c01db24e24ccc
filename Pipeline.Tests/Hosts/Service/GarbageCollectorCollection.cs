namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

/// <summary>
/// Tests that count garbage collections run alone: another test's collection in between can promote the watched
/// sentinel out of generation 0, and a forced generation-0 collection then has nothing to report (seen once in CI).
/// </summary>
[CollectionDefinition(nameof(GarbageCollectorCollection), DisableParallelization = true)]
public sealed class GarbageCollectorCollection;
