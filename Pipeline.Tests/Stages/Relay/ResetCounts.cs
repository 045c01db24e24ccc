using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>What <c>pipeline.connections_reset</c> counts while this listens, by "side/reason".</summary>
internal sealed class ResetCounts : IDisposable
{
    private readonly ConcurrentDictionary<string, long> _counts = new();
    private readonly MeterListener _listener = new();

    public ResetCounts()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == "pipeline.connections_reset")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? side = null, reason = null;
            foreach (var tag in tags)
            {
                side = tag.Key == TagNames.Side ? tag.Value as string : side;
                reason = tag.Key == TagNames.Reason ? tag.Value as string : reason;
            }

            _counts.AddOrUpdate($"{side}/{reason}", value, (_, sum) => sum + value);
        });
        _listener.Start();
    }

    /// <summary>The counts so far, as "side/reason=N" in order, comma-separated ("" for none).</summary>
    public string Snapshot() => string.Join(",", _counts.OrderBy(static c => c.Key, StringComparer.Ordinal).Select(static c => $"{c.Key}={c.Value}"));

    public void Dispose() => _listener.Dispose();
}
