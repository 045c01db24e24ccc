using System.Collections.Frozen;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// Every method this program speaks: method name to key size, salt/IV size and factory.
/// Sizes follow shadowsocks-libev and the Python shadowsocks 3.0 tables.
/// </summary>
internal static class CipherCatalog
{
    private static readonly CipherInfo[] s_all =
    [
        Aead("aes-128-gcm", 16, static k => new DotNetAesGcm(k.Span)),
        Aead("aes-192-gcm", 24, static k => new DotNetAesGcm(k.Span)),
        Aead("aes-256-gcm", 32, static k => new DotNetAesGcm(k.Span)),
        Aead("chacha20-ietf-poly1305", 32, static k => new DotNetChaCha20Poly1305(k.Span)),
    ];

    private static readonly FrozenDictionary<string, CipherInfo> s_byName =
        s_all.ToFrozenDictionary(static c => c.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>All methods, in catalog order.</summary>
    public static IReadOnlyList<CipherInfo> All => s_all;

    public static bool TryGet(string name, out CipherInfo cipher)
    {
        if (s_byName.TryGetValue(name.Trim(), out var found))
        {
            cipher = found;
            return true;
        }

        cipher = null!;
        return false;
    }

    /// <summary>Looks a method up, or returns one line naming close matches.</summary>
    public static bool TryGet(string name, out CipherInfo cipher, out string? error)
    {
        if (TryGet(name, out cipher))
        {
            error = null;
            return true;
        }

        var close = s_all
            .Select(c => (c.Name, Distance: Levenshtein(name.ToLowerInvariant(), c.Name)))
            .OrderBy(t => t.Distance)
            .ThenBy(t => t.Name, StringComparer.Ordinal)
            .Take(3)
            .Select(t => t.Name);
        error = $"method: unknown method '{name}'; did you mean {string.Join(", ", close)}? (list them with: shadowsocks methods)";
        return false;
    }

    private static CipherInfo Aead(string name, int keySize, Func<ReadOnlyMemory<byte>, IAeadCipher> factory) =>
        new(name, CipherFamily.Aead, keySize, keySize, factory, null);

    private static int Levenshtein(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
