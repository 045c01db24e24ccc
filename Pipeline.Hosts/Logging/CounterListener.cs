using System.Diagnostics.Metrics;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// Listens to one of <see cref="PipelineTelemetry"/>'s counters, for a log that follows it (<see cref="FailureWarning"/>,
/// <see cref="UdpDropLog"/>, <see cref="ServerCircuitLog"/>). By name: the instrument may be published while
/// PipelineTelemetry is still being initialized, when its field is not yet assigned.
/// </summary>
internal static class CounterListener
{
    /// <summary>A started listener calling <paramref name="measured"/> with each measurement and its tags; dispose it to stop.</summary>
    public static MeterListener Start(string instrumentName, MeasurementCallback<long> measured)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == instrumentName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback(measured);
        listener.Start();
        return listener;
    }

    /// <summary>The text value of tag <paramref name="key"/>, or null.</summary>
    public static string? Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string key)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == key)
            {
                return tag.Value as string;
            }
        }

        return null;
    }
}
