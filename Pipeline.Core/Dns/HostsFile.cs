using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>The hosts file (<c>/etc/hosts</c> format): <c>ADDRESS NAME [ALIASES...] [# comment]</c>.</summary>
internal static class HostsFile
{
    public static Dictionary<string, IPAddress[]> Parse(IEnumerable<string> lines)
    {
        var names = new Dictionary<string, List<IPAddress>>(StringComparer.OrdinalIgnoreCase);
        foreach (var raw in lines)
        {
            var line = raw.Split('#', 2)[0];
            var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || !IPAddress.TryParse(fields[0], out var address))
            {
                continue;
            }

            foreach (var name in fields.Skip(1))
            {
                if (!names.TryGetValue(name, out var list))
                {
                    names[name] = list = [];
                }

                if (!list.Contains(address))
                {
                    list.Add(address);
                }
            }
        }

        return names.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Reads the file; a missing or unreadable file is an empty table.</summary>
    public static Dictionary<string, IPAddress[]> Load(string path)
    {
        try
        {
            return Parse(File.ReadLines(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new Dictionary<string, IPAddress[]>(StringComparer.OrdinalIgnoreCase);
        }
    }
}
