using System.Globalization;
using System.Text;
using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Hosts.Configuration;

/// <summary>
/// A server given as a SIP002 URL: <c>ss://BASE64URL(method:password)@host:port[/][?plugin=NAME;OPTIONS][#tag]</c>, the plain
/// form <c>ss://method:password@host:port</c> (percent-encoded, as SIP002 allows and SIP022 requires), or the legacy
/// <c>ss://BASE64(method:password@host:port)[#tag]</c>. Errors never repeat the URL: it holds the password.
/// </summary>
internal sealed record ServerUrl(string Method, string Password, string Host, int Port, string? Tag, string? Plugin = null, string? PluginOptions = null)
{
    private const string Shape = "expected ss://BASE64URL(method:password)@host:port or ss://method:password@host:port";

    public static ServerUrl Parse(string text)
    {
        const string scheme = "ss://";
        if (!text.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            throw Error($"not an ss:// URL; {Shape}");
        }

        var rest = text[scheme.Length..];
        string? tag = null;
        if (rest.IndexOf('#') is >= 0 and var hash)
        {
            tag = Uri.UnescapeDataString(rest[(hash + 1)..]);
            rest = rest[..hash];
        }

        string? plugin = null;
        string? pluginOptions = null;
        if (rest.IndexOf('?') is >= 0 and var question)
        {
            foreach (var pair in rest[(question + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=');
                var name = eq < 0 ? pair : pair[..eq];
                var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
                if (name == "plugin" && value.Length > 0)
                {
                    // SIP002: "plugin=NAME;OPTIONS", the options as SS_PLUGIN_OPTIONS takes them.
                    var semicolon = value.IndexOf(';');
                    plugin = semicolon < 0 ? value : value[..semicolon];
                    pluginOptions = semicolon < 0 || semicolon == value.Length - 1 ? null : value[(semicolon + 1)..];
                }
            }

            rest = rest[..question];
        }

        rest = rest.TrimEnd('/');
        string userInfo;
        string hostPort;
        if (rest.LastIndexOf('@') is >= 0 and var at)
        {
            userInfo = rest[..at];
            hostPort = rest[(at + 1)..];
            userInfo = userInfo.Contains(':', StringComparison.Ordinal) || userInfo.Contains('%', StringComparison.Ordinal)
                ? userInfo
                : DecodeBase64(userInfo);
        }
        else
        {
            // Legacy: the whole of method:password@host:port in base64.
            var decoded = DecodeBase64(rest);
            var legacyAt = decoded.LastIndexOf('@');
            if (legacyAt < 0)
            {
                throw Error(Shape);
            }

            userInfo = decoded[..legacyAt];
            hostPort = decoded[(legacyAt + 1)..];
        }

        var colon = userInfo.IndexOf(':');
        if (colon <= 0)
        {
            throw Error($"the user part must be method:password; {Shape}");
        }

        var method = Uri.UnescapeDataString(userInfo[..colon]);
        var password = Uri.UnescapeDataString(userInfo[(colon + 1)..]);
        if (password.Length == 0)
        {
            throw Error("the password is empty");
        }

        var portColon = hostPort.LastIndexOf(':');
        if (portColon <= 0 || !int.TryParse(hostPort[(portColon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw Error("expected host:port after '@', with a port from 1 to 65535 (IPv6 in brackets: [::1]:8388)");
        }

        var host = HostPart.Unbracket(hostPort[..portColon]) ?? throw Error("an IPv6 host goes in brackets, with the port after them: [::1]:8388");

        return host.Length == 0 ? throw Error("the host is empty") : new ServerUrl(method, password, host, port, tag, plugin, pluginOptions);
    }

    /// <summary>This server as configuration keys (the layer between config.json and the environment).</summary>
    public IEnumerable<KeyValuePair<string, string?>> ToConfiguration() =>
    [
        new("server", Host),
        new("server_port", Port.ToString(CultureInfo.InvariantCulture)),
        new("method", Method),
        new("password", Password),
        .. Plugin is null ? [] : new KeyValuePair<string, string?>[] { new("plugin", Plugin), new("plugin_opts", PluginOptions) },
    ];

    /// <summary>Without the password, so that the URL can be logged.</summary>
    public override string ToString() => $"ss://{Method}@{Host}:{Port.ToString(CultureInfo.InvariantCulture)}";

    private static string DecodeBase64(string text)
    {
        var standard = text.Replace('-', '+').Replace('_', '/');
        standard = standard.PadRight(standard.Length + ((4 - (standard.Length % 4)) % 4), '=');
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Convert.FromBase64String(standard));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw Error($"the user part is neither base64url nor method:password; {Shape}");
        }
    }

    private static UsageException Error(string problem) => new($"--server-url: {problem}");
}
