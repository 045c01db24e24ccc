using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using OpenTelemetry;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// Writes finished spans as OTLP/JSON (the protobuf JSON mapping: <c>resourceSpans</c> / <c>scopeSpans</c>,
/// lowercase hex ids, nanosecond times as strings), one export batch per line, into a file that Jaeger's UI opens
/// through Search → Upload.
/// <para>
/// A batch that cannot be written (a full disk, a quota, an I/O error) is dropped and counted in
/// <see cref="PipelineTelemetry.TraceFileFailures"/> by a fixed reason (<see cref="Reason"/>; the error's text, which
/// names the file, goes to the default-level warning <see cref="Logging.FailureWarning.TraceFile"/> as the measurement's
/// <see cref="CounterDetail"/>); what it had written of its line is cut off again, so every line of the file stays one
/// whole batch. It used to throw on the exporter's thread, which ended the process.
/// </para>
/// <para>
/// A file deleted or renamed away (logrotate without <c>copytruncate</c>) is reopened at its path: before a batch, at
/// most once a <see cref="CheckInterval"/>, the path is compared with the open file as the kernel names it
/// (<c>/proc/self/fd</c>), and a new file is opened when they differ. Before, the batches went on into the unlinked or
/// renamed file for as long as the process ran.
/// </para>
/// </summary>
internal sealed class OtlpJsonFileExporter : BaseExporter<Activity>
{
    /// <summary>The least time between two checks that the path still names the open file (a readlink each).</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    // errno values (Linux) that .NET keeps as an IOException's HResult on Unix.
    private const int Eio = 5;
    private const int Enospc = 28;
    private const int Erofs = 30;
    private const int Edquot = 122;

    private readonly Lock _gate = new();
    private readonly string _serviceName;
    private readonly TimeProvider _time;

    /// <summary>Unbuffered: each batch is one write of its whole line, and a failed one leaves nothing behind to retry. Null after a failed reopen.</summary>
    private FileStream? _file;

    /// <summary>The open file as <c>/proc/self/fd</c> named it when opened (null: not known).</summary>
    private string? _opened;

    /// <summary>Why the last reopen failed, while <see cref="_file"/> is null.</summary>
    private Exception? _openFailure;

    private long _checked;

    /// <summary>Opens (creates, or appends to) the file; throws <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/> when it cannot.</summary>
    public OtlpJsonFileExporter(string path, string serviceName, TimeProvider time)
    {
        FilePath = path;
        _serviceName = serviceName;
        _time = time;
        _file = Open(path);
        _opened = Named(_file);
        _checked = time.GetTimestamp();
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
            WriteResource(json);
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

        buffer.WriteByte((byte)'\n');
        lock (_gate)
        {
            if (Current() is not { } file)
            {
                if (_openFailure is { } failure) // else disposed
                {
                    Count(failure);
                }

                return ExportResult.Failure;
            }

            var before = file.CanSeek ? file.Position : -1;
            try
            {
                file.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
                return ExportResult.Success;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Truncate(file, before);
                Count(e);
                return ExportResult.Failure;
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_gate)
            {
                _file?.Dispose();
                _file = null;
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>
    /// A failure's reason, one of a fixed few: <c>disk_full</c> (ENOSPC, EDQUOT: a full disk, a quota),
    /// <c>permission</c> (EACCES, EPERM, a read-only file system: the file or its folder may not be written),
    /// <c>io</c> (EIO: the device failed), <c>other</c>.
    /// </summary>
    internal static string Reason(Exception e) => e switch
    {
        UnauthorizedAccessException => "permission",
        IOException { HResult: Enospc or Edquot } => "disk_full",
        IOException { HResult: Erofs } => "permission",
        IOException { HResult: Eio } => "io",
        _ => "other",
    };

    private static void Count(Exception e) =>
        CounterDetail.Add(PipelineTelemetry.TraceFileFailures, e.Message.TrimEnd('.'), new KeyValuePair<string, object?>(TagNames.Reason, Reason(e)));

    private static FileStream Open(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
    }

    /// <summary>
    /// The open file, reopened at <see cref="FilePath"/> when the path no longer names it (checked at most once a
    /// <see cref="CheckInterval"/>); null when it cannot be opened (<see cref="_openFailure"/> says why), tried again a
    /// check later.
    /// </summary>
    private FileStream? Current()
    {
        if (_time.GetElapsedTime(_checked) < CheckInterval)
        {
            return _file;
        }

        _checked = _time.GetTimestamp();
        if (_file is not null && NamesOpenFile(_file))
        {
            return _file;
        }

        _file?.Dispose();
        _file = null;
        try
        {
            _file = Open(FilePath);
            _opened = Named(_file);
            _openFailure = null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _openFailure = e;
        }

        return _file;
    }

    /// <summary>
    /// Whether <see cref="FilePath"/> still names <paramref name="file"/>: the kernel's name for it is the one it had
    /// when opened (a deleted file's ends in " (deleted)", a renamed one's is its new path). Without <c>/proc</c>, only
    /// a path that no longer exists is seen.
    /// </summary>
    private bool NamesOpenFile(FileStream file) =>
        _opened is null || Named(file) is not { } now ? File.Exists(FilePath) : now == _opened;

    /// <summary>The open file's path as the kernel names it now (<c>/proc/self/fd/N</c>'s link), or null.</summary>
    private static string? Named(FileStream file)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{file.SafeFileHandle.DangerousGetHandle()}").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The provider's resource (<c>service.name</c>, <c>service.instance.id</c>: the role and process, which tell a
    /// local's spans from its server's when both files are opened together, and the SDK's <c>telemetry.sdk.*</c>), as
    /// the OTLP exporter sends it; only <c>service.name</c> before.
    /// </summary>
    private void WriteResource(Utf8JsonWriter json)
    {
        var named = false;
        foreach (var attribute in ParentProvider?.GetResource().Attributes ?? [])
        {
            WriteAttribute(json, attribute.Key, attribute.Value);
            named |= attribute.Key == "service.name";
        }

        if (!named)
        {
            WriteAttribute(json, "service.name", _serviceName);
        }
    }

    /// <summary>Cuts off the part of a line a failed write left (shrinking a file needs no space).</summary>
    private static void Truncate(FileStream file, long length)
    {
        if (length < 0)
        {
            return;
        }

        try
        {
            file.SetLength(length);
        }
        catch (IOException)
        {
            // The file cannot be shrunk either: the next line starts after the broken one.
        }
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
