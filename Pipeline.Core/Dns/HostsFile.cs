using System.Net;
using System.Security.Cryptography;

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

    /// <summary>
    /// A digest of the file's bytes (SHA-256, read in pieces; a missing or unreadable file: empty), to see an edit that
    /// leaves its length and time as they were: made within the file system's timestamp tick of the last, or with its
    /// time put back.
    /// </summary>
    public static byte[] Digest(string path)
    {
        try
        {
            using var file = File.OpenRead(path);
            return SHA256.HashData(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>
    /// Reads the file once: its table and the <see cref="Digest"/> of what was read. A missing or unreadable file is an
    /// empty table (and an empty digest).
    /// </summary>
    public static Dictionary<string, IPAddress[]> Read(string path, out byte[] digest)
    {
        byte[] content;
        try
        {
            content = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            digest = [];
            return new Dictionary<string, IPAddress[]>(StringComparer.OrdinalIgnoreCase);
        }

        digest = SHA256.HashData(content);
        return Parse(Lines(content));
    }

    private static IEnumerable<string> Lines(byte[] content)
    {
        using var reader = new StreamReader(new MemoryStream(content)); // UTF-8, as File.ReadLines reads
        while (reader.ReadLine() is { } line)
        {
            yield return line;
        }
    }
}
