using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using OpenTelemetry;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// Writes finished spans as OTLP/JSON (the protobuf JSON mapping: <c>resourceSpans</c> / <c>scopeSpans</c>,
/// lowercase hex ids, nanosecond times as strings), one export batch per line, into a file that Jaeger's UI opens
/// through Search → Upload.
/// </summary>
internal sealed class OtlpJsonFileExporter : BaseExporter<Activity>
{
    private readonly StreamWriter _writer;
    private readonly string _serviceName;

    public OtlpJsonFileExporter(string path, string serviceName)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        _serviceName = serviceName;
        FilePath = path;
    }

    public string FilePath { get; }

    public override ExportResult Export(in Batch<Activity> batch)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("resourceSpans");
            json.WriteStartObject();
            json.WriteStartObject("resource");
            json.WriteStartArray("attributes");
            WriteAttribute(json, "service.name", _serviceName);
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteStartArray("scopeSpans");

            foreach (var group in Group(batch))
            {
                json.WriteStartObject();
                json.WriteStartObject("scope");
                json.WriteString("name", group.Key.Name);
                if (group.Key.Version is { } version)
                {
                    json.WriteString("version", version);
                }

                json.WriteEndObject();
                json.WriteStartArray("spans");
                foreach (var activity in group.Value)
                {
                    WriteSpan(json, activity);
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }

        lock (_writer)
        {
            _writer.WriteLine(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
            _writer.Flush();
        }

        return ExportResult.Success;
    }

    protected override bool OnShutdown(int timeoutMilliseconds)
    {
        lock (_writer)
        {
            _writer.Flush();
        }

        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _writer.Dispose();
        }

        base.Dispose(disposing);
    }

    private static Dictionary<(string Name, string? Version), List<Activity>> Group(in Batch<Activity> batch)
    {
        var groups = new Dictionary<(string, string?), List<Activity>>();
        foreach (var activity in batch)
        {
            var key = (activity.Source.Name, activity.Source.Version);
            if (!groups.TryGetValue(key, out var list))
            {
                groups[key] = list = [];
            }

            list.Add(activity);
        }

        return groups;
    }

    private static void WriteSpan(Utf8JsonWriter json, Activity activity)
    {
        json.WriteStartObject();
        json.WriteString("traceId", activity.TraceId.ToHexString());
        json.WriteString("spanId", activity.SpanId.ToHexString());
        if (activity.ParentSpanId != default)
        {
            json.WriteString("parentSpanId", activity.ParentSpanId.ToHexString());
        }

        json.WriteString("name", activity.DisplayName);
        json.WriteNumber("kind", activity.Kind switch
        {
            ActivityKind.Server => 2,
            ActivityKind.Client => 3,
            ActivityKind.Producer => 4,
            ActivityKind.Consumer => 5,
            _ => 1,
        });
        var start = activity.StartTimeUtc;
        json.WriteString("startTimeUnixNano", UnixNanos(start));
        json.WriteString("endTimeUnixNano", UnixNanos(start + activity.Duration));
        json.WriteStartArray("attributes");
        foreach (var tag in activity.TagObjects)
        {
            WriteAttribute(json, tag.Key, tag.Value);
        }

        json.WriteEndArray();
        json.WriteStartObject("status");
        json.WriteNumber("code", activity.Status switch
        {
            ActivityStatusCode.Ok => 1,
            ActivityStatusCode.Error => 2,
            _ => 0,
        });
        if (activity.StatusDescription is { } description)
        {
            json.WriteString("message", description);
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static string UnixNanos(DateTime utc) =>
        ((utc.Ticks - DateTime.UnixEpoch.Ticks) * 100L).ToString(CultureInfo.InvariantCulture);

    private static void WriteAttribute(Utf8JsonWriter json, string key, object? value)
    {
        json.WriteStartObject();
        json.WriteString("key", key);
        json.WriteStartObject("value");
        switch (value)
        {
            case bool b:
                json.WriteBoolean("boolValue", b);
                break;
            case int or long or short or byte or ushort or uint:
                json.WriteString("intValue", Convert.ToInt64(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture));
                break;
            case double or float:
                json.WriteNumber("doubleValue", Convert.ToDouble(value, CultureInfo.InvariantCulture));
                break;
            default:
                json.WriteString("stringValue", Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }
}
