using System.Globalization;
using System.Text;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// OpenTelemetry names as the Prometheus text exposition (0.0.4) writes them, after the OpenTelemetry compatibility
/// spec ("Prometheus and OpenMetrics Compatibility"): dots and other characters a metric name may not hold become
/// <c>_</c>; the unit follows as a word (<c>By</c>: <c>_bytes</c>, <c>s</c>: <c>_seconds</c>; an annotation in braces,
/// <c>{connection}</c>, is dropped); a counter ends in <c>_total</c>. So <c>pipeline.udp.dropped</c> ({datagram}) is
/// <c>pipeline_udp_dropped_total</c> and <c>pipeline.bytes_relayed</c> (By) <c>pipeline_bytes_relayed_bytes_total</c>.
/// </summary>
internal static class PrometheusNames
{
    /// <summary>The metric name of an instrument: its name, its unit's word, and <c>_total</c> for a counter.</summary>
    public static string Metric(string name, string? unit, bool counter, bool gauge)
    {
        var result = Sanitize(name, allowColon: true);
        if (UnitWord(unit, gauge) is { Length: > 0 } word && !result.EndsWith($"_{word}", StringComparison.Ordinal))
        {
            result = $"{result}_{word}";
        }

        return counter && !result.EndsWith("_total", StringComparison.Ordinal) ? $"{result}_total" : result;
    }

    /// <summary>A tag's key as a label name (<c>pipeline.reason</c>: <c>pipeline_reason</c>).</summary>
    public static string Label(string key)
    {
        var result = Sanitize(key, allowColon: false);
        return result.StartsWith("__", StringComparison.Ordinal) ? $"key{result}" : result; // "__" names are Prometheus's own
    }

    /// <summary>Appends a label value in quotes: backslash, double quote and line feed escaped, as the format asks.</summary>
    public static void AppendLabelValue(StringBuilder text, string value)
    {
        text.Append('"');
        foreach (var c in value)
        {
            _ = c switch
            {
                '\\' => text.Append(@"\\"),
                '"' => text.Append("\\\""),
                '\n' => text.Append(@"\n"),
                _ => text.Append(c),
            };
        }

        text.Append('"');
    }

    /// <summary>A <c># HELP</c> line's text: backslash and line feed escaped (a double quote stays as it is there).</summary>
    public static string Help(string description) => description.Replace(@"\", @"\\", StringComparison.Ordinal).Replace("\n", @"\n", StringComparison.Ordinal);

    /// <summary>A tag value as label text: invariant culture, <c>true</c>/<c>false</c> in lower case as OpenTelemetry writes them.</summary>
    public static string LabelValue(object? value) => value switch
    {
        null => "",
        string text => text,
        bool flag => flag ? "true" : "false",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>A sample value: a whole number as one, else the shortest round-trip form; <c>+Inf</c>, <c>-Inf</c>, <c>NaN</c>.</summary>
    public static string Value(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : double.IsNaN(value) ? "NaN"
        : value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>
    /// The unit as a word, or null: annotations (<c>{request}</c>) say nothing to Prometheus; <c>1</c> is a gauge's
    /// <c>ratio</c>; <c>X/Y</c> is <c>X_per_Y</c>; a unit not listed goes as it is, sanitized.
    /// </summary>
    private static string? UnitWord(string? unit, bool gauge)
    {
        if (string.IsNullOrEmpty(unit))
        {
            return null;
        }

        var plain = StripAnnotations(unit);
        if (plain.Length == 0)
        {
            return null;
        }

        if (plain == "1")
        {
            return gauge ? "ratio" : null;
        }

        var slash = plain.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0 && slash < plain.Length - 1)
        {
            return Sanitize($"{Word(plain[..slash])}_per_{PerWord(plain[(slash + 1)..])}", allowColon: false);
        }

        return Sanitize(Word(plain), allowColon: false);
    }

    private static string Word(string unit) => unit switch
    {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "bit" => "bits",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => unit,
    };

    private static string PerWord(string unit) => unit switch
    {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => Word(unit),
    };

    private static string StripAnnotations(string unit)
    {
        var text = new StringBuilder(unit.Length);
        var depth = 0;
        foreach (var c in unit)
        {
            if (c == '{')
            {
                depth++;
            }
            else if (c == '}' && depth > 0)
            {
                depth--;
            }
            else if (depth == 0)
            {
                text.Append(c);
            }
        }

        return text.ToString().Trim();
    }

    /// <summary>Every character outside <c>[a-zA-Z0-9_]</c> (and <c>:</c> in a metric name) as <c>_</c>, runs of <c>_</c> as one; not starting with a digit.</summary>
    private static string Sanitize(string text, bool allowColon)
    {
        var result = new StringBuilder(text.Length + 1);
        foreach (var c in text)
        {
            var valid = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' || (allowColon && c == ':');
            var next = valid ? c : '_';
            if (next == '_' && result.Length > 0 && result[^1] == '_')
            {
                continue;
            }

            result.Append(next);
        }

        if (result.Length == 0 || char.IsAsciiDigit(result[0]))
        {
            result.Insert(0, '_');
        }

        return result.ToString();
    }
}
