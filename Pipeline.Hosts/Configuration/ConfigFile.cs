using System.Text.Json;
using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Hosts.Configuration;

/// <summary>
/// A shadowsocks config.json as ss-libev, shadowsocks-rust and the Python server read it (snake_case keys):
/// <c>server</c>, <c>server_port</c>, <c>local_address</c>, <c>local_port</c>, <c>password</c>, <c>key</c>,
/// <c>method</c>, <c>timeout</c>, <c>mode</c>, <c>fast_open</c> (accepted, no effect), <c>nameserver</c>, <c>ipv6_first</c>.
/// </summary>
internal sealed class ConfigFile
{
    private readonly JsonElement _root;
    private readonly string _path;

    private ConfigFile(string path, JsonElement root)
    {
        _path = path;
        _root = root;
    }

    public static ConfigFile Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"-c {path}: cannot read the config file: {e.Message}");
        }

        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new UsageException($"-c {path}: the config file must hold one JSON object");
            }

            return new ConfigFile(path, document.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw new UsageException($"-c {path}: not valid JSON at line {e.LineNumber + 1}: {e.Message.Split('.')[0]}");
        }
    }

    /// <summary>A string field; numbers are accepted as their text (server_port: 8388 or "8388").</summary>
    public string? String(string field)
    {
        if (!_root.TryGetProperty(field, out var value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Null => null,
            JsonValueKind.Array when value.GetArrayLength() > 0 && value[0].ValueKind == JsonValueKind.String => value[0].GetString(),
            _ => throw new UsageException($"{field}: in {_path}, expected a string or a number"),
        };
    }

    /// <summary>A list field: a comma-separated string (as the Python server reads it) or a JSON array of strings.</summary>
    public string? List(string field)
    {
        if (!_root.TryGetProperty(field, out var value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                string.Join(',', value.EnumerateArray().Select(e => e.GetString())),
            JsonValueKind.Null => null,
            _ => throw new UsageException($"{field}: in {_path}, expected a comma-separated string or an array of strings"),
        };
    }

    /// <summary>
    /// <c>servers</c>: an array of objects with <c>server</c> and <c>server_port</c> (shadowsocks-rust's multi-server
    /// form; the method and password are the file's). Empty when absent.
    /// </summary>
    public IReadOnlyList<(string Host, int? Port)> Servers()
    {
        if (!_root.TryGetProperty("servers", out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw new UsageException($"servers: in {_path}, expected an array of {{\"server\": HOST, \"server_port\": PORT}}");
        }

        var list = new List<(string, int?)>();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("server", out var host) || host.ValueKind != JsonValueKind.String)
            {
                throw new UsageException($"servers: in {_path}, every entry needs \"server\" (a host) and \"server_port\"");
            }

            int? port = item.TryGetProperty("server_port", out var p) && p.TryGetInt32(out var n) && n is > 0 and <= 65535 ? n : null;
            list.Add((host.GetString()!, port));
        }

        return list;
    }

    public int? Int(string field, int min, int max)
    {
        var text = String(field);
        if (text is null)
        {
            return null;
        }

        return int.TryParse(text, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException($"{field}: in {_path}, '{text}' is not a number from {min} to {max}");
    }

    /// <summary>The <c>pipeline</c> section: per stage, <c>max_parallelism</c> and <c>bounded_capacity</c>.</summary>
    public Shadowsocks.Pipeline.Core.Configuration.PipelineOptions Pipeline(Shadowsocks.Pipeline.Core.Configuration.PipelineOptions defaults)
    {
        if (!_root.TryGetProperty("pipeline", out var section))
        {
            return defaults;
        }

        if (section.ValueKind != JsonValueKind.Object)
        {
            throw new UsageException($"pipeline: in {_path}, expected an object of stages (handshake, resolve, connect, encrypt, decrypt, forward, udp)");
        }

        var result = defaults;
        foreach (var stage in section.EnumerateObject())
        {
            result = stage.Name switch
            {
                "handshake" => result with { Handshake = Stage(stage, result.Handshake) },
                "resolve" => result with { Resolve = Stage(stage, result.Resolve) },
                "connect" => result with { Connect = Stage(stage, result.Connect) },
                "encrypt" => result with { Encrypt = Stage(stage, result.Encrypt) },
                "decrypt" => result with { Decrypt = Stage(stage, result.Decrypt) },
                "forward" => result with { Forward = Stage(stage, result.Forward) },
                "udp" => result with { Udp = Stage(stage, result.Udp) },
                _ => throw new UsageException($"pipeline.{stage.Name}: in {_path}, unknown stage; one of handshake, resolve, connect, encrypt, decrypt, forward, udp"),
            };
        }

        return result;
    }

    private Shadowsocks.Pipeline.Core.Configuration.StageOptions Stage(JsonProperty stage, Shadowsocks.Pipeline.Core.Configuration.StageOptions current)
    {
        if (stage.Value.ValueKind != JsonValueKind.Object)
        {
            throw new UsageException($"pipeline.{stage.Name}: in {_path}, expected {{ \"max_parallelism\": N, \"bounded_capacity\": N }}");
        }

        var result = current;
        foreach (var field in stage.Value.EnumerateObject())
        {
            var name = $"pipeline.{stage.Name}.{field.Name}";
            if (field.Value.ValueKind != JsonValueKind.Number || !field.Value.TryGetInt32(out var value) || value < 1 || value > 1_000_000)
            {
                throw new UsageException($"{name}: in {_path}, expected a whole number from 1 to 1000000");
            }

            result = field.Name switch
            {
                "max_parallelism" => result with { MaxParallelism = value },
                "bounded_capacity" => result with { BoundedCapacity = value },
                _ => throw new UsageException($"{name}: in {_path}, unknown setting; use max_parallelism or bounded_capacity"),
            };
        }

        return result;
    }

    public bool? Bool(string field) => String(field) switch
    {
        null => null,
        "true" => true,
        "false" => false,
        var other => throw new UsageException($"{field}: in {_path}, '{other}' is not true or false"),
    };
}
