using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Hosts.Configuration;

/// <summary>
/// The settings of one run on Microsoft.Extensions.Configuration, in four layers, each winning over the one before:
/// config.json (<c>-c</c>, the shadowsocks snake_case keys), the server of <c>--server-url</c> (SIP002), environment
/// variables <c>SHADOWSOCKS_KEY</c> (<c>__</c> for a nested key: <c>SHADOWSOCKS_PIPELINE__RESOLVE__MAX_PARALLELISM</c>),
/// and the command line. Every read names where a bad value came from, in one line: the flag (<c>-p:</c>), the
/// field and file (<c>server_port: in config.json,</c>) or the variable (<c>SHADOWSOCKS_SERVER_PORT:</c>).
/// </summary>
internal sealed class LayeredSettings
{
    /// <summary>Environment variables with this prefix are settings.</summary>
    public const string EnvironmentPrefix = "SHADOWSOCKS_";

    private readonly IConfigurationRoot _root;
    private readonly IConfigurationProvider[] _providers;
    private readonly List<Func<string, string>> _labels;
    private readonly bool _hasFile;

    /// <summary>The config file's keys whose value is JSON <c>true</c> or <c>false</c> (the provider keeps them as text, "True").</summary>
    private readonly HashSet<string> _fileBooleans;

    private LayeredSettings(IConfigurationRoot root, List<Func<string, string>> labels, bool hasFile, HashSet<string> fileBooleans)
    {
        _root = root;
        _providers = [.. root.Providers];
        _labels = labels;
        _hasFile = hasFile;
        _fileBooleans = fileBooleans;
    }

    /// <summary>The config file's top-level keys, as written (none without <c>-c</c>).</summary>
    public IEnumerable<string> FileKeys() =>
        _hasFile ? _providers[0].GetChildKeys([], null).Distinct(StringComparer.OrdinalIgnoreCase) : [];

    public IConfiguration Configuration => _root;

    /// <summary>The largest config file read: ample for any real one (ss-manager's hold a few hundred bytes).</summary>
    internal const int MaxConfigBytes = 1024 * 1024;

    public static LayeredSettings Build(ParsedArguments args, IReadOnlyDictionary<string, string?> environment)
    {
        var builder = new ConfigurationBuilder();
        var labels = new List<Func<string, string>>();
        string? file = null;
        if (args.Value(Flags.Config) is { } path)
        {
            if (string.IsNullOrWhiteSpace(path))
            {
                throw new UsageException("-c: the config file's path is empty; give one (e.g. -c /etc/shadowsocks/config.json)");
            }

            file = Path.GetFullPath(path);
            // Without exclusions: the default provider will not read a file whose name starts with a dot (ss-manager
            // writes .shadowsocks_PORT.conf, and ~/.shadowsocks.json is a common name).
            var directory = Path.GetDirectoryName(file)!;
            if (Directory.Exists(file))
            {
                throw new UsageException($"-c {path}: is a directory; give the config file in it (e.g. -c {Path.Combine(path, "config.json")})");
            }

            if (!File.Exists(file))
            {
                throw new UsageException($"-c {path}: cannot read the config file: no such file");
            }

            var size = new FileInfo(file).Length;
            if (size == 0)
            {
                throw new UsageException($"-c {path}: the config file is empty; it holds one JSON object of shadowsocks keys (e.g. {{\"server_port\": 8388, \"password\": \"...\"}})");
            }

            if (size > MaxConfigBytes)
            {
                // ss-libev refuses such a file too; read whole, it would sit in memory for the life of the process.
                throw new UsageException($"-c {path}: the config file is {size / 1024} KiB; a config file is at most {MaxConfigBytes / 1024} KiB (is it the right file?)");
            }

            if (FirstLineNotUtf8(file) is { } badLine)
            {
                // Read as text, its bytes would become U+FFFD: a password in Latin-1 would give another key than ss-libev's.
                throw new UsageException($"-c {path}: line {badLine} is not UTF-8 text; save the file as UTF-8");
            }

            builder.AddJsonFile(
                new Microsoft.Extensions.FileProviders.PhysicalFileProvider(directory, Microsoft.Extensions.FileProviders.Physical.ExclusionFilters.None),
                Path.GetFileName(file), optional: false, reloadOnChange: false);
            labels.Add(key => $"{Dotted(key)}: in {path},");
        }

        if (args.Value(Flags.ServerUrl) is { } url)
        {
            builder.Add(new MemoryConfigurationSource { InitialData = ServerUrl.Parse(url).ToConfiguration() });
            labels.Add(_ => "--server-url:");
        }

        var variables = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var variableNames = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in environment)
        {
            if (name.StartsWith(EnvironmentPrefix, StringComparison.Ordinal) && name.Length > EnvironmentPrefix.Length)
            {
                var key = name[EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal).ToLowerInvariant();
                variables[key] = value;
                variableNames[key] = name;
            }
        }

        builder.Add(new MemoryConfigurationSource { InitialData = variables });
        labels.Add(key => $"{(variableNames.TryGetValue(key, out var name) ? name : EnvironmentPrefix + key.ToUpperInvariant().Replace(":", "__", StringComparison.Ordinal))}:");

        var flagOf = new Dictionary<string, Flag>(StringComparer.OrdinalIgnoreCase);
        var commandLine = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var flag in args.InOrderGiven(Flags.Relay)) // the last given wins (-u -U: UDP only; -U -u: both), as with ss-libev's getopt
        {
            if (flag == Flags.PasswordEnv)
            {
                var variable = args.Value(flag)!;
                commandLine["password"] = !environment.TryGetValue(variable, out var password) || password is null
                    ? throw new UsageException($"--password-env: environment variable {variable} is not set")
                    : password.Length == 0
                        ? throw new UsageException($"--password-env: environment variable {variable} is empty; set it to the password, or give the password with -k or SHADOWSOCKS_PASSWORD")
                        : password;
                flagOf["password"] = flag;
            }
            else if (flag.Key is { } key)
            {
                commandLine[key] = flag.IsSwitch ? flag.SwitchValue : flag == Flags.Server ? string.Join(',', args.Values(flag)) : args.Value(flag);
                flagOf[key] = flag;
            }
        }

        builder.Add(new MemoryConfigurationSource { InitialData = commandLine });
        labels.Add(key => $"{(flagOf.TryGetValue(key, out var flag) ? flag.Display : Dotted(key))}:");

        try
        {
            var root = builder.Build();
            return new LayeredSettings(root, labels, file is not null, file is null ? [] : Booleans(file));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"-c {file}: cannot read the config file: {OneLine(e.Message)}");
        }
        catch (Exception e) when (e is FormatException or InvalidDataException or JsonException)
        {
            var json = Causes(e).OfType<JsonException>().FirstOrDefault(); // under InvalidDataException and FormatException
            var detail = json is not null ? $"line {json.LineNumber + 1}: {WithoutPosition(OneLine(json.Message))}"
                : Causes(e).LastOrDefault(static c => c is FormatException) is { } format ? OneLine(format.Message)
                : OneLine(e.Message);
            throw new UsageException($"-c {file}: not a valid config file (one JSON object of shadowsocks keys): {detail}");
        }
    }

    /// <summary>
    /// The keys (as the JSON provider names them: <c>servers:0:password</c>) of the file's <c>true</c> and <c>false</c>
    /// values. Read once the provider has taken the file, with its options: the file is JSON here.
    /// </summary>
    private static HashSet<string> Booleans(string file)
    {
        var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        using var document = JsonDocument.Parse(File.ReadAllText(file), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        Visit(document.RootElement, null);
        return keys;

        void Visit(JsonElement element, string? path)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        Visit(property.Value, path is null ? property.Name : $"{path}:{property.Name}");
                    }

                    break;
                case JsonValueKind.Array:
                    var index = 0;
                    foreach (var item in element.EnumerateArray())
                    {
                        Visit(item, $"{path}:{index++}");
                    }

                    break;
                case JsonValueKind.True or JsonValueKind.False when path is not null:
                    keys.Add(path);
                    break;
            }
        }
    }

    /// <summary>The JSON reader's message without its own position (" LineNumber: 0 | BytePositionInLine: 0."): the line is given from 1 before it.</summary>
    private static string WithoutPosition(string message) =>
        message.IndexOf(" LineNumber:", StringComparison.Ordinal) is var at and > 0 ? message[..at] : message;

    /// <summary>The line (from 1) of the first byte sequence that is not UTF-8; null for a UTF-8 file (or one unread here: the provider says why).</summary>
    private static int? FirstLineNotUtf8(string file)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var line = 1;
        for (var i = 0; i < bytes.Length;)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes.AsSpan(i), out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                return line;
            }

            line += bytes[i] == (byte)'\n' ? 1 : 0;
            i += consumed;
        }

        return null;
    }

    private static IEnumerable<Exception> Causes(Exception e)
    {
        for (Exception? cause = e; cause is not null; cause = cause.InnerException)
        {
            yield return cause;
        }
    }

    /// <summary>The command line's layer (<see cref="Layer"/>): always the last, the one that wins.</summary>
    public int CommandLineLayer => _providers.Length - 1;

    /// <summary>The layer that gives <paramref name="key"/>: higher wins (file 0 … command line); -1 when none does.</summary>
    public int Layer(string key)
    {
        for (var i = _providers.Length - 1; i >= 0; i--)
        {
            if (_providers[i].TryGet(key, out var value) && !string.IsNullOrEmpty(value))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Where <paramref name="key"/> came from, as an error's opening words: "-p:", "timeout: in FILE,", "SHADOWSOCKS_TIMEOUT:".</summary>
    public string Label(string key)
    {
        for (var i = _providers.Length - 1; i >= 0; i--)
        {
            var provider = _providers[i];
            if (provider.TryGet(key, out _) || provider.GetChildKeys([], key).Any())
            {
                return _labels[i](key);
            }
        }

        return $"{Dotted(key)}:";
    }

    /// <summary>
    /// A single text setting; <c>null</c> when absent. A JSON array or object there is refused, an empty one too
    /// (<c>"timeout": {}</c>, which the JSON provider keeps as the key with no value, would otherwise read as absent).
    /// </summary>
    public string? String(string key) => Value(key, boolean: false);

    /// <summary>
    /// <see cref="String"/>, and a JSON <c>true</c> or <c>false</c> from the file: as written for a switch or a number
    /// (<paramref name="boolean"/>), refused for text, where the provider's "True" would be taken as is (a password
    /// "True" gives another key than the ss-libev peer's, which refuses the file).
    /// </summary>
    private string? Value(string key, bool boolean)
    {
        var section = _root.GetSection(key);
        if (section.Value is { } text)
        {
            return !FileBoolean(key) ? text
                : boolean ? text.ToLowerInvariant()
                : throw new UsageException($"{Label(key)} expected text, not {text.ToLowerInvariant()}; put it in quotes (\"{text.ToLowerInvariant()}\") if that is meant");
        }

        return section.GetChildren().Any() || GivenEmpty(key) ? throw new UsageException($"{Label(key)} expected a single value, not a list, an object or null (leave the key out for the default)")
            : null;
    }

    /// <summary>The winning layer for <paramref name="key"/> is the config file, where it is JSON <c>true</c> or <c>false</c>.</summary>
    private bool FileBoolean(string key)
    {
        for (var i = _providers.Length - 1; i >= 0; i--)
        {
            if (_providers[i].TryGet(key, out _))
            {
                return i == 0 && _hasFile && _fileBooleans.Contains(key);
            }
        }

        return false;
    }

    /// <summary>The winning layer gives <paramref name="key"/> as an empty JSON array or object (present, with no value and no children).</summary>
    private bool GivenEmpty(string key)
    {
        for (var i = _providers.Length - 1; i >= 0; i--)
        {
            if (_providers[i].TryGet(key, out var value))
            {
                return value is null;
            }
        }

        return false;
    }

    /// <summary>A list: a comma-separated string or a JSON array of strings, joined with commas.</summary>
    public string? List(string key)
    {
        var section = _root.GetSection(key);
        if (section.Value is not null)
        {
            return String(key);
        }

        // An array's items are keyed 0, 1, ...: an object's values are not a list (ss-libev takes "server": {...} as absent).
        var children = section.GetChildren().ToList();
        return children.Count == 0 ? null
            : children.All(c => c.Value is not null && int.TryParse(c.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                ? string.Join(',', children.Select(c => String(c.Path)))
            : throw new UsageException($"{Label(key)} expected a comma-separated string or an array of strings");
    }

    public int? Int(string key, int min, int max)
    {
        var text = Value(key, boolean: true);
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException($"{Label(key)} '{text}' is not a number from {min} to {max}");
    }

    public bool? Bool(string key) => Value(key, boolean: true) switch
    {
        null or "" => null,
        var t when t.Equals("true", StringComparison.OrdinalIgnoreCase) => true,
        var t when t.Equals("false", StringComparison.OrdinalIgnoreCase) => false,
        var other => throw new UsageException($"{Label(key)} '{other}' is not true or false"),
    };

    /// <summary>
    /// <c>servers</c>: objects with <c>server</c> and <c>server_port</c> (shadowsocks-rust's form, which also reads them
    /// as <c>address</c> and <c>port</c>; the method and password are the run's). An entry with <c>"disabled": true</c>
    /// is left out, as shadowsocks-rust leaves it. Empty when absent.
    /// </summary>
    public IReadOnlyList<(string Host, int? Port)> Servers()
    {
        var section = _root.GetSection("servers");
        var list = new List<(string, int?)>();
        if (section.Value is { Length: > 0 })
        {
            throw new UsageException($"{Label("servers")} expected an array of {{\"server\": HOST, \"server_port\": PORT}}");
        }

        foreach (var item in section.GetChildren())
        {
            if (Bool($"{item.Path}:disabled") == true)
            {
                continue;
            }

            if ((String($"{item.Path}:server") is { Length: > 0 } server ? server : String($"{item.Path}:address")) is not { Length: > 0 } host)
            {
                throw new UsageException($"{Label(item.Path)} has no \"server\"; give each entry its server's host (\"server\" or \"address\") and \"server_port\"");
            }

            list.Add((host, Int($"{item.Path}:{(item["server_port"] is null && item["port"] is not null ? "port" : "server_port")}", 1, 65535)));
        }

        if (list.Count == 0 && section.GetChildren().Any())
        {
            throw new UsageException($"{Label("servers")} every server is \"disabled\": true; enable one (or give \"server\")");
        }

        return list;
    }

    /// <summary>
    /// A section of named settings (<c>telemetry</c>): an object whose fields are among <paramref name="fields"/>. Any
    /// other value or field is refused, as the <c>pipeline</c> section's are: read by name only, it would be a silent default.
    /// </summary>
    public void CheckSection(string key, IReadOnlyList<string> fields)
    {
        var section = _root.GetSection(key);
        var expected = $"{{ {string.Join(", ", fields.Select(static f => $"\"{f}\": ..."))} }}";
        if (section.Value is { Length: > 0 })
        {
            throw new UsageException($"{Label(key)} expected an object, {expected}");
        }

        foreach (var field in section.GetChildren())
        {
            if (!fields.Contains(field.Key, StringComparer.OrdinalIgnoreCase))
            {
                throw new UsageException($"{Label(field.Path)} unknown setting; use {string.Join(", ", fields.SkipLast(1))} or {fields[^1]}");
            }
        }
    }

    /// <summary>The <c>pipeline</c> section: per stage, <c>max_parallelism</c> and <c>bounded_capacity</c>; and <c>read_budget_mib</c>.</summary>
    public PipelineOptions Pipeline(PipelineOptions defaults)
    {
        var section = _root.GetSection("pipeline");
        if (section.Value is { Length: > 0 })
        {
            throw new UsageException($"{Label("pipeline")} expected an object of stages (handshake, resolve, connect, encrypt, decrypt, forward, udp)");
        }

        var result = defaults;
        foreach (var stage in section.GetChildren())
        {
            if (stage.Key.Equals("read_budget_mib", StringComparison.OrdinalIgnoreCase))
            {
                result = result with
                {
                    ReadBudgetMiB = Int(stage.Path, 1, 65_536) ?? throw new UsageException($"{Label(stage.Path)} expected a whole number of MiB from 1 to 65536"),
                };
                continue;
            }

            result = stage.Key.ToLowerInvariant() switch
            {
                "handshake" => result with { Handshake = Stage(stage, result.Handshake) },
                "resolve" => result with { Resolve = Stage(stage, result.Resolve) },
                "connect" => result with { Connect = Stage(stage, result.Connect) },
                "encrypt" => result with { Encrypt = Stage(stage, result.Encrypt, perConnection: true) },
                "decrypt" => result with { Decrypt = Stage(stage, result.Decrypt, perConnection: true) },
                "forward" => result with { Forward = Stage(stage, result.Forward, perConnection: true) },
                "udp" => result with { Udp = Stage(stage, result.Udp) },
                _ => throw new UsageException($"{Label(stage.Path)} unknown stage; one of handshake, resolve, connect, encrypt, decrypt, forward, udp (or read_budget_mib)"),
            };
        }

        return result;
    }

    private static string Dotted(string key) => key.Replace(':', '.');

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();

    /// <summary>
    /// One stage's fields. A per-connection stage (<paramref name="perConnection"/>: encrypt, decrypt, forward) works on
    /// one chunk at a time so that a stream stays in order: a <c>max_parallelism</c> other than 1 is refused (it was
    /// taken without a word, run as 1, and yet shown by <c>-v</c> and on the spans as if in effect).
    /// </summary>
    private StageOptions Stage(IConfigurationSection stage, StageOptions current, bool perConnection = false)
    {
        if (stage.Value is { Length: > 0 })
        {
            throw new UsageException($"{Label(stage.Path)} expected {{ \"max_parallelism\": N, \"bounded_capacity\": N }}");
        }

        var result = current;
        foreach (var field in stage.GetChildren())
        {
            // The name first: a misspelt field is named as such, whatever its value.
            var key = field.Key.ToLowerInvariant();
            if (key is not ("max_parallelism" or "bounded_capacity"))
            {
                throw new UsageException($"{Label(field.Path)} unknown setting; use max_parallelism or bounded_capacity");
            }

            var value = Int(field.Path, 1, 1_000_000) ?? throw new UsageException($"{Label(field.Path)} expected a whole number from 1 to 1000000");
            if (perConnection && key == "max_parallelism" && value != 1)
            {
                throw new UsageException($"{Label(field.Path)} '{value}': a per-connection stage works on one chunk at a time, so that a stream's chunks stay in order; give 1 or leave it out (bounded_capacity sets the chunks in flight)");
            }

            result = key == "max_parallelism" ? result with { MaxParallelism = value } : result with { BoundedCapacity = value };
        }

        return result;
    }
}
