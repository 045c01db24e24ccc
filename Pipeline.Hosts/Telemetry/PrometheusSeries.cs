using System.Text;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// One series of a <see cref="PrometheusFamily"/>: a set of tags and its value, added to without locks. Whole-number
/// measurements (the pipeline's) go into a 64-bit integer, so a counter stays exact however large it grows; others
/// into a double beside it. A histogram's series keeps its count and its sum.
/// </summary>
internal sealed class PrometheusSeries
{
    private readonly KeyValuePair<string, object?>[] _tags;
    private long _whole;
    private double _fraction;
    private long _count;

    public PrometheusSeries(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        _tags = tags.ToArray();
        Labels = LabelText(_tags);
    }

    /// <summary>The series' labels as written after the name, <c>{a="x",b="y"}</c>, or empty without tags.</summary>
    public string Labels { get; }

    /// <summary>The value: a counter's or gauge's; a histogram's sum.</summary>
    public double Value => Interlocked.Read(ref _whole) + Volatile.Read(ref _fraction);

    /// <summary>A histogram's count of measurements.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>Whether the series is the one of these tags (in any order).</summary>
    public bool Matches(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length != _tags.Length)
        {
            return false;
        }

        foreach (var tag in tags)
        {
            var found = false;
            foreach (var own in _tags)
            {
                if (string.Equals(own.Key, tag.Key, StringComparison.Ordinal))
                {
                    found = Equals(own.Value, tag.Value);
                    break;
                }
            }

            if (!found)
            {
                return false;
            }
        }

        return true;
    }

    public void Add(long value) => Interlocked.Add(ref _whole, value);

    public void Add(double value)
    {
        var current = Volatile.Read(ref _fraction);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref _fraction, current + value, current);
            if (seen.Equals(current))
            {
                return;
            }

            current = seen;
        }
    }

    /// <summary>A gauge's reading: replaces the value.</summary>
    public void Set(long value)
    {
        Interlocked.Exchange(ref _whole, value);
        Interlocked.Exchange(ref _fraction, 0);
    }

    /// <summary>A gauge's reading: replaces the value.</summary>
    public void Set(double value)
    {
        Interlocked.Exchange(ref _whole, 0);
        Interlocked.Exchange(ref _fraction, value);
    }

    /// <summary>A histogram's measurement: counted, and added to the sum.</summary>
    public void Observe(double value)
    {
        Interlocked.Increment(ref _count);
        Add(value);
    }

    /// <summary>The labels with one more, <c>{a="x",le="+Inf"}</c>: for a histogram's bucket.</summary>
    public string LabelsWith(string name, string value)
    {
        var text = new StringBuilder(Labels.Length + name.Length + value.Length + 6);
        text.Append(Labels.Length > 0 ? Labels[..^1] + "," : "{").Append(name).Append('=');
        PrometheusNames.AppendLabelValue(text, value);
        return text.Append('}').ToString();
    }

    private static string LabelText(KeyValuePair<string, object?>[] tags)
    {
        if (tags.Length == 0)
        {
            return "";
        }

        var text = new StringBuilder("{");
        foreach (var (key, value) in tags.OrderBy(static t => t.Key, StringComparer.Ordinal))
        {
            if (text.Length > 1)
            {
                text.Append(',');
            }

            text.Append(PrometheusNames.Label(key)).Append('=');
            PrometheusNames.AppendLabelValue(text, PrometheusNames.LabelValue(value));
        }

        return text.Append('}').ToString();
    }
}
