using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// The meters' instruments as the Prometheus text exposition (format 0.0.4), for <see cref="MetricsEndpoint"/>: a
/// <see cref="MeterListener"/> adds each measurement of a synchronous instrument to its series as it happens (a scan of
/// a few series and an interlocked add: nothing allocated, no lock), and reads the observable ones (gauges such as
/// <c>pipeline.stage.queue_length</c>, the runtime's <c>dotnet.*</c>) only when scraped. Made only when
/// <c>telemetry.metrics_listen</c> is set: otherwise no listener, and the instruments cost what they did.
/// </summary>
internal sealed class PrometheusCollector : IDisposable
{
    /// <summary>The Prometheus text format's media type, version 0.0.4.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly MeterListener _listener;
    private readonly ConcurrentDictionary<Instrument, PrometheusFamily> _families = new();
    private readonly Lock _scraping = new();

    /// <summary>Starts listening to the meters named (by default the pipeline's and the runtime's, as OTLP exports them).</summary>
    public PrometheusCollector(params string[] meters)
    {
        var names = meters.Length > 0 ? meters : [PipelineTelemetry.Name, TelemetrySetup.RuntimeMeter];
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (names.Contains(instrument.Meter.Name))
                {
                    listener.EnableMeasurementEvents(instrument, _families.GetOrAdd(instrument, static i => new PrometheusFamily(i)));
                }
            },
            MeasurementsCompleted = (instrument, state) => _families.TryRemove(instrument, out var gone),
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((PrometheusFamily)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) => ((PrometheusFamily)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<short>(static (_, value, tags, state) => ((PrometheusFamily)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<byte>(static (_, value, tags, state) => ((PrometheusFamily)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((PrometheusFamily)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<float>(static (_, value, tags, state) => ((PrometheusFamily)state!).Record(value, tags));
        _listener.Start();
    }

    /// <summary>Every family now, in the text format: the observable instruments read first. One scrape at a time.</summary>
    public string Scrape()
    {
        lock (_scraping)
        {
            foreach (var family in _families.Values.Where(static f => f.Observable))
            {
                family.Clear();
            }

            _listener.RecordObservableInstruments();
            var text = new StringBuilder(8192);
            var written = new HashSet<string>(StringComparer.Ordinal);
            foreach (var family in _families.Values.OrderBy(static f => f.Name, StringComparer.Ordinal))
            {
                if (written.Add(family.Name)) // two instruments of one name (in two meters): the first, as a family must be one
                {
                    family.WriteTo(text);
                }
            }

            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();
}
