using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Shadowsocks.Pipeline.Core.Diagnostics;

/// <summary>
/// The <c>pipeline.stage.queue_length</c> gauge: how many items wait in each shared stage's input queue, summed over
/// the relays of the process (the demo runs a local and a server), tagged <c>pipeline.stage</c>. Relays register
/// their shared blocks at start and drop them when disposed.
/// </summary>
internal static class StageQueues
{
    private static readonly ConcurrentDictionary<object, (string Stage, Func<int> InputCount)[]> s_registered = new();

    private static readonly ObservableGauge<int> s_gauge = PipelineTelemetry.Meter.CreateObservableGauge(
        "pipeline.stage.queue_length", Observe, "{item}", "Items waiting in a shared stage's input queue.");

    /// <summary>Registers one relay's stages; dispose to remove them.</summary>
    public static IDisposable Register(params (string Stage, Func<int> InputCount)[] stages)
    {
        _ = s_gauge;
        var owner = new Registration();
        s_registered[owner] = stages;
        return owner;
    }

    /// <summary>The current lengths, summed per stage (what the gauge reports).</summary>
    public static IReadOnlyDictionary<string, int> Snapshot() =>
        s_registered.Values.SelectMany(v => v).GroupBy(s => s.Stage).ToDictionary(g => g.Key, g => g.Sum(s => s.InputCount()));

    private static IEnumerable<Measurement<int>> Observe() =>
        Snapshot().Select(e => new Measurement<int>(e.Value, new KeyValuePair<string, object?>(TagNames.Stage, e.Key)));

    private sealed class Registration : IDisposable
    {
        public void Dispose() => s_registered.TryRemove(this, out _);
    }
}
