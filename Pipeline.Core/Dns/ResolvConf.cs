using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// <c>resolv.conf</c>: the <c>nameserver ADDRESS</c> lines, port 53. When it names none, public resolvers are the
/// fallback, as ss-libev does.
/// </summary>
internal static class ResolvConf
{
    public static readonly IPEndPoint[] Fallback = [new(IPAddress.Parse("8.8.8.8"), 53), new(IPAddress.Parse("1.1.1.1"), 53)];

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

    public static IPEndPoint[] Load(string path)
    {
        try
        {
            return Parse(File.ReadLines(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fallback;
        }
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
