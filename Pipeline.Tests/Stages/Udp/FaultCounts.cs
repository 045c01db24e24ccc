using System.Diagnostics.Metrics;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Tests.Stages.Udp;

/// <summary>
/// Listens to <c>pipeline.stage_faults</c> (by stage) and <c>pipeline.udp.dropped</c> (by reason) while it lives. Tests
/// run in parallel: each names a stage or a reason of its own and reads only that.
/// </summary>
internal sealed class FaultCounts : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _faults = [];
    private readonly Dictionary<string, long> _drops = [];

    public FaultCounts()
    {
        _listener.InstrumentPublished = static (instrument, listener) =>
        {
            if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name is "pipeline.stage_faults" or "pipeline.udp.dropped")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var (key, table) = instrument.Name == "pipeline.stage_faults" ? (TagNames.Stage, _faults) : (TagNames.Reason, _drops);
            foreach (var tag in tags)
            {
                if (tag.Key == key && tag.Value is string name)
                {
                    lock (table)
                    {
                        table[name] = table.GetValueOrDefault(name) + value;
                    }
                }
            }
        });
        _listener.Start();
    }

    public long Faults(string stage)
    {
        lock (_faults)
        {
            return _faults.GetValueOrDefault(stage);
        }
    }

    public long Drops(string reason)
    {
        lock (_drops)
        {
            return _drops.GetValueOrDefault(reason);
        }
    }

    public void Dispose() => _listener.Dispose();
}
