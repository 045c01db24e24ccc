using System.Globalization;
using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// <c>resolv.conf</c>: the <c>nameserver ADDRESS</c> lines, port 53. When it names none, public resolvers are the
/// fallback, as ss-libev does. Of the <c>options</c>, <c>timeout:N</c> and <c>attempts:N</c> (glibc's, see
/// <see cref="ParseOptions"/>), with the <c>RES_OPTIONS</c> environment variable's over them, as glibc applies it;
/// <c>ndots</c>, <c>search</c> and <c>domain</c> are not applied: a proxy resolves the names its clients give as
/// absolute names.
/// </summary>
internal static class ResolvConf
{
    public static readonly IPEndPoint[] Fallback = [new(IPAddress.Parse("8.8.8.8"), 53), new(IPAddress.Parse("1.1.1.1"), 53)];

    /// <summary>glibc's bound on <c>timeout:N</c>, in seconds (RES_MAXRETRANS): a larger value is taken as this.</summary>
    public const int MaxTimeoutSeconds = 30;

    /// <summary>glibc's bound on <c>attempts:N</c> (RES_MAXRETRY): a larger value is taken as this.</summary>
    public const int MaxAttempts = 5;

    /// <summary>
    /// <paramref name="options"/> with the servers of its <see cref="DnsResolverOptions.ResolvConfPath"/>, and that
    /// file's <c>timeout:N</c> as the first round's wait per attempt and <c>attempts:N</c> as the rounds over the
    /// servers (N times as many attempts as servers) when it gives them, <see cref="DnsResolverOptions.ResOptions"/>'s
    /// over the file's; the lookup's total deadline stays as it is.
    /// </summary>
    public static DnsResolverOptions Apply(DnsResolverOptions options)
    {
        var lines = ReadLines(options.ResolvConfPath);
        var servers = Parse(lines);
        var (timeout, rounds) = ParseOptions(lines, options.ResOptions);
        return options with
        {
            Servers = servers,
            AttemptTimeout = timeout is { } seconds ? TimeSpan.FromSeconds(seconds) : options.AttemptTimeout,
            Attempts = rounds is { } n ? n * servers.Length : options.Attempts,
        };
    }

    /// <summary>
    /// The <c>options</c> lines' <c>timeout:N</c> (seconds) and <c>attempts:N</c>, as glibc reads them: each option on
    /// its own, a later one over an earlier, a value over glibc's bound taken as the bound (<see cref="MaxTimeoutSeconds"/>,
    /// <see cref="MaxAttempts"/>); an unknown option is ignored, and so is a value that is not a whole number of at least 1
    /// (glibc's atoi would take it as 0: no wait, no query). <paramref name="resOptions"/>, the <c>RES_OPTIONS</c>
    /// environment variable (the same options, space-separated, without the word <c>options</c>), is read after the
    /// lines, so its options override theirs, as glibc's res_init applies it.
    /// </summary>
    public static (int? TimeoutSeconds, int? Attempts) ParseOptions(IEnumerable<string> lines, string? resOptions = null)
    {
        int? timeout = null, attempts = null;
        foreach (var raw in lines)
        {
            var fields = raw.Split('#', 2)[0].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 0 && fields[0] == "options")
            {
                Read(fields.AsSpan(1), ref timeout, ref attempts);
            }
        }

        if (resOptions is not null)
        {
            Read(resOptions.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries), ref timeout, ref attempts);
        }

        return (timeout, attempts);
    }

    /// <summary>Each of <paramref name="options"/> in turn: a valid <c>timeout:N</c> or <c>attempts:N</c> over what was read before.</summary>
    private static void Read(ReadOnlySpan<string> options, ref int? timeout, ref int? attempts)
    {
        foreach (var option in options)
        {
            if (option.StartsWith("timeout:", StringComparison.Ordinal) && Bounded(option["timeout:".Length..], MaxTimeoutSeconds) is { } seconds)
            {
                timeout = seconds;
            }
            else if (option.StartsWith("attempts:", StringComparison.Ordinal) && Bounded(option["attempts:".Length..], MaxAttempts) is { } n)
            {
                attempts = n;
            }
        }
    }

    /// <summary>A whole number of at least 1, at most <paramref name="max"/> (a larger one, however large, is <paramref name="max"/>); null otherwise.</summary>
    private static int? Bounded(string digits, int max) =>
        digits.Length > 0 && digits.All(char.IsAsciiDigit) && digits.TrimStart('0').Length > 0
            ? int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value <= max ? value : max
            : null;

    private static string[] ReadLines(string path)
    {
        try
        {
            return File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    public static IPEndPoint[] Parse(IEnumerable<string> lines)
    {
        var servers = new List<IPEndPoint>();
        foreach (var raw in lines)
        {
            var fields = raw.Split('#', 2)[0].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            // A link-local address keeps its interface (fe80::1%eth0): without one it cannot be connected to. An
            // interface that is not there is left off: the bare address, as before.
            if (fields.Length >= 2 && fields[0] == "nameserver"
                && (IPAddress.TryParse(fields[1], out var address) || IPAddress.TryParse(fields[1].Split('%')[0], out address)))
            {
                servers.Add(new IPEndPoint(address, 53));
            }
        }

        return servers.Count > 0 ? [.. servers] : Fallback;
    }

    /// <summary>
    /// Parses <c>-d ADDR[:PORT][,ADDR[:PORT]...]</c> (IPv6 as <c>[::1]:53</c> or bare <c>::1</c>); false with a
    /// one-line error naming the bad entry otherwise.
    /// </summary>
    public static bool TryParseServers(string text, out IPEndPoint[] servers, out string? error)
    {
        var list = new List<IPEndPoint>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (IpLiteral.TryParse(item, out var bare)) // [::1] or [::1]:53 is the endpoint form below
            {
                list.Add(new IPEndPoint(bare, 53));
            }
            else if (IPEndPoint.TryParse(item, out var endPoint))
            {
                list.Add(endPoint.Port == 0 ? new IPEndPoint(endPoint.Address, 53) : endPoint);
            }
            else
            {
                servers = [];
                error = $"nameserver: '{item}' is not an address; expected ADDR[:PORT][,ADDR[:PORT]...], e.g. 1.1.1.1,[2606:4700::1111]:53";
                return false;
            }
        }

        if (list.Count == 0)
        {
            servers = [];
            error = "nameserver: empty; expected ADDR[:PORT][,ADDR[:PORT]...], e.g. 127.0.0.1:5353";
            return false;
        }

        servers = [.. list];
        error = null;
        return true;
    }
}
