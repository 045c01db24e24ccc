namespace Shadowsocks.Pipeline.Hosts.Cli;

/// <summary>
/// The command line in shadowsocks-libev's shape: short flags with a value (<c>-s ADDR</c>), switches (<c>-u</c>),
/// and long options (<c>--key BASE64</c>, <c>--key=BASE64</c>). A flag given twice keeps every value.
/// </summary>
internal sealed class ParsedArguments
{
    /// <summary>Flags that take a value; anything else known is a switch.</summary>
    private static readonly HashSet<string> s_valued =
    [
        "-s", "-p", "-l", "-b", "-k", "-m", "-t", "-c", "-L", "-d", "-f", "-a", "-n", "-i",
        "--key", "--password-env", "--server-url", "--nameserver", "--forbidden-ip", "--handshake-timeout", "--max-connections",
        "--connect-timeout", "--udp-timeout", "--bytes", "--plugin", "--plugin-opts", "--acl", "--manager-address",
        "--mtu", "--traces",
    ];

    private static readonly HashSet<string> s_switches =
    [
        "-u", "-U", "-v", "-6", "-h", "--help", "--fast-open", "--reuse-port", "--no-delay", "--check", "--tcp-only",
        "--udp-only", "--mptcp",
    ];

    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _switches = new(StringComparer.Ordinal);

    public static ParsedArguments Parse(IReadOnlyList<string> args)
    {
        var parsed = new ParsedArguments();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string? inline = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.IndexOf('=') is > 2 and var eq)
            {
                inline = arg[(eq + 1)..];
                arg = arg[..eq];
            }

            if (s_switches.Contains(arg))
            {
                parsed._switches.Add(arg);
            }
            else if (s_valued.Contains(arg))
            {
                var value = inline ?? (i + 1 < args.Count ? args[++i] : throw new UsageException($"{arg}: needs a value (see --help)"));
                if (!parsed._values.TryGetValue(arg, out var list))
                {
                    parsed._values[arg] = list = [];
                }

                list.Add(value);
            }
            else
            {
                throw new UsageException($"{arg}: unknown option (see --help)");
            }
        }

        return parsed;
    }

    public bool Has(string flag) => _switches.Contains(flag) || _values.ContainsKey(flag);

    public string? Value(string flag) => _values.TryGetValue(flag, out var list) ? list[^1] : null;

    public IReadOnlyList<string> Values(string flag) => _values.TryGetValue(flag, out var list) ? list : [];

    public int? IntValue(string flag, int min, int max)
    {
        var text = Value(flag);
        if (text is null)
        {
            return null;
        }

        return int.TryParse(text, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException($"{flag}: '{text}' is not a number from {min} to {max}");
    }
}
