using System.Diagnostics.Metrics;
using System.Text;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// One instrument as a Prometheus metric family: its name, type and help, and a series per set of tags. A measurement
/// finds its series by a scan of the few there are (no allocation, no lock once the series exists); a new set of
/// tags takes a lock and a copy. Past <see cref="MaxSeries"/> sets, further ones go into one overflow series, as the
/// OpenTelemetry SDK does (<c>otel_metric_overflow="true"</c>), so that an unbounded tag cannot grow memory.
/// </summary>
internal sealed class PrometheusFamily
{
    /// <summary>Tag sets per instrument before the overflow series: the OpenTelemetry SDK's default cardinality limit.</summary>
    public const int MaxSeries = 2000;

    private static readonly KeyValuePair<string, object?>[] s_overflow = [new("otel.metric.overflow", true)];

    private readonly Lock _adding = new();
    private readonly bool _histogram;
    private readonly bool _replaces;
    private volatile PrometheusSeries[] _series = [];

    public PrometheusFamily(Instrument instrument)
    {
        var kind = instrument.GetType() is { IsGenericType: true } type ? type.GetGenericTypeDefinition() : null;
        Type = kind == typeof(Counter<>) || kind == typeof(ObservableCounter<>) ? "counter"
            : kind == typeof(Histogram<>) ? "histogram"
            : "gauge"; // UpDownCounter, Gauge and their observable forms: a value that goes up and down
        Observable = instrument.IsObservable;
        _histogram = Type == "histogram";
        _replaces = Observable || kind == typeof(Gauge<>); // a reading, not an increment (an observable counter reads its total)
        Name = PrometheusNames.Metric(instrument.Name, instrument.Unit, Type == "counter", Type == "gauge");
        Help = string.IsNullOrEmpty(instrument.Description) ? null : PrometheusNames.Help(instrument.Description);
    }

    public string Name { get; }

    /// <summary><c>counter</c>, <c>gauge</c> or <c>histogram</c>.</summary>
    public string Type { get; }

    public string? Help { get; }

    /// <summary>Read at each scrape (its callback gives the values), rather than added to as things happen.</summary>
    public bool Observable { get; }

    /// <summary>A whole-number measurement, into its tags' series: added, set (a gauge's reading) or observed (a histogram's).</summary>
    public void Record(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var series = For(tags);
        if (_histogram)
        {
            series.Observe(value);
        }
        else if (_replaces)
        {
            series.Set(value);
        }
        else
        {
            series.Add(value);
        }
    }

    /// <summary>A measurement with a fraction, as <see cref="Record(long, ReadOnlySpan{KeyValuePair{string, object?}})"/>.</summary>
    public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var series = For(tags);
        if (_histogram)
        {
            series.Observe(value);
        }
        else if (_replaces)
        {
            series.Set(value);
        }
        else
        {
            series.Add(value);
        }
    }

    /// <summary>The series of these tags, made on first use.</summary>
    private PrometheusSeries For(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var series in _series)
        {
            if (series.Matches(tags))
            {
                return series;
            }
        }

        lock (_adding)
        {
            var current = _series;
            foreach (var series in current)
            {
                if (series.Matches(tags))
                {
                    return series;
                }
            }

            if (current.Length >= MaxSeries)
            {
                foreach (var series in current)
                {
                    if (series.Matches(s_overflow))
                    {
                        return series;
                    }
                }

                tags = s_overflow;
            }

            var added = new PrometheusSeries(tags);
            _series = [.. current, added];
            return added;
        }
    }

    /// <summary>Forgets an observable instrument's series before its callback gives this scrape's (a tag set gone is gone).</summary>
    public void Clear()
    {
        lock (_adding)
        {
            _series = [];
        }
    }

    /// <summary>Appends the family: <c># HELP</c>, <c># TYPE</c> and its samples.</summary>
    public void WriteTo(StringBuilder text)
    {
        var all = _series;
        if (Help is not null)
        {
            text.Append("# HELP ").Append(Name).Append(' ').Append(Help).Append('\n');
        }

        text.Append("# TYPE ").Append(Name).Append(' ').Append(Type).Append('\n');
        if (Type == "histogram")
        {
            // One bucket, +Inf: the count and the sum, which is what rate(sum) / rate(count) needs.
            foreach (var series in all)
            {
                Sample(text, $"{Name}_bucket", series.LabelsWith("le", "+Inf"), series.Count);
                Sample(text, $"{Name}_sum", series.Labels, series.Value);
                Sample(text, $"{Name}_count", series.Labels, series.Count);
            }

            return;
        }

        if (all.Length == 0 && !Observable)
        {
            // Nothing counted yet: 0, so that a rate or an alert has a series from the start.
            Sample(text, Name, "", 0);
            return;
        }

        foreach (var series in all)
        {
            Sample(text, Name, series.Labels, series.Value);
        }
    }

    private static void Sample(StringBuilder text, string name, string labels, double value) =>
        text.Append(name).Append(labels).Append(' ').Append(PrometheusNames.Value(value)).Append('\n');
}
