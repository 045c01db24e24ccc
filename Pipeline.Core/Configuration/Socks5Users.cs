using System.Security.Cryptography;
using System.Text;

namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>
/// The local's SOCKS5 users (<c>socks5_auth</c>, <c>--socks5-auth FILE</c>): a client must log in as one of them with
/// RFC 1929's username/password before its request is read. The file has one <c>user:password</c> per line (the
/// password runs to the end of the line and may hold <c>:</c>; nothing is trimmed but a CRLF line's <c>\r</c>), blank
/// lines and lines starting with <c>#</c> aside; each name and password 1 to 255 bytes of UTF-8, as RFC 1929's
/// one-byte lengths allow.
/// </summary>
/// <remarks>
/// Passwords are kept and compared as SHA-256 digests with <see cref="CryptographicOperations.FixedTimeEquals"/>: the
/// time a wrong password takes tells neither how much of it was right nor how long the right one is, and an unknown
/// user costs the same comparison (against a digest no password has) as a known one. The table can be replaced as a
/// whole (<see cref="ReplaceWith"/>, a reload) while connections are logging in: each reads the one in place.
/// </remarks>
internal sealed class Socks5Users
{
    /// <summary>RFC 1929: ULEN and PLEN are one byte each.</summary>
    public const int MaxFieldBytes = 255;

    /// <summary>Compared with when the user is unknown: random, so that no password matches it.</summary>
    private static readonly byte[] s_nobody = RandomNumberGenerator.GetBytes(SHA256.HashSizeInBytes);

    /// <summary>User name (its UTF-8 bytes as Latin-1 characters: one per byte, so any bytes from the wire look up exactly) -> SHA-256 of the password.</summary>
    private volatile Dictionary<string, byte[]> _passwords;

    private Socks5Users(Dictionary<string, byte[]> passwords) => _passwords = passwords;

    /// <summary>How many users there are.</summary>
    public int Count => _passwords.Count;

    /// <summary>
    /// Whether <paramref name="username"/> is a user and <paramref name="password"/> is theirs, in time that does not
    /// depend on the password (a known name's look-up takes some nanoseconds longer than an unknown one's).
    /// </summary>
    public bool Verify(ReadOnlySpan<byte> username, ReadOnlySpan<byte> password)
    {
        Span<byte> offered = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(password, offered);
        var known = _passwords.TryGetValue(Encoding.Latin1.GetString(username), out var digest);
        return CryptographicOperations.FixedTimeEquals(offered, known ? digest : s_nobody) && known;
    }

    /// <summary>The users' names (as <see cref="Encoding.UTF8"/> reads them from a login).</summary>
    public IReadOnlySet<string> Names => _passwords.Keys.Select(Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>The users here that <paramref name="newer"/> does not have, or has with another password, by name.</summary>
    public IReadOnlySet<string> GoneIn(Socks5Users newer)
    {
        var theirs = newer._passwords;
        return _passwords
            .Where(p => !theirs.TryGetValue(p.Key, out var digest) || !CryptographicOperations.FixedTimeEquals(p.Value, digest))
            .Select(p => Name(p.Key))
            .ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Puts <paramref name="other"/>'s users in place of these (a reload); logins from now on read the new ones.</summary>
    public void ReplaceWith(Socks5Users other)
    {
        _passwords = other._passwords;
        Interlocked.MemoryBarrier(); // before the reload reads which connections are whose (a login's check after it set its user: the stage)
    }

    /// <summary>A key of the table as the user's name: the file's names are UTF-8, so this gives them back exactly.</summary>
    private static string Name(string key) => Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(key));

    /// <summary>
    /// Reads the file's text. False with <paramref name="error"/> naming the line, what is wrong and the fix (a file
    /// with no user at all has no line to name).
    /// </summary>
    public static bool TryParse(string text, out Socks5Users users, out string? error)
    {
        users = new Socks5Users([]);
        var passwords = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var lines = new Dictionary<string, int>(StringComparer.Ordinal); // where each user was given
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.EndsWith('\r') ? raw[..^1] : raw;
            if (string.IsNullOrWhiteSpace(line) || line.TrimStart().StartsWith('#'))
            {
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                error = $"line {number}: no ':' between user name and password; write user:password, one user a line";
                return false;
            }

            var name = line[..colon];
            var password = line[(colon + 1)..];
            if (name.Length == 0)
            {
                error = $"line {number}: the user name before ':' is empty; write user:password, one user a line";
                return false;
            }

            if (password.Length == 0)
            {
                error = $"line {number}: user '{name}' has an empty password; give one after ':' (1 to {MaxFieldBytes} bytes)";
                return false;
            }

            if (Encoding.UTF8.GetByteCount(name) > MaxFieldBytes)
            {
                error = $"line {number}: the user name is longer than {MaxFieldBytes} bytes (RFC 1929's limit); shorten it";
                return false;
            }

            if (Encoding.UTF8.GetByteCount(password) > MaxFieldBytes)
            {
                error = $"line {number}: user '{name}''s password is longer than {MaxFieldBytes} bytes (RFC 1929's limit); shorten it";
                return false;
            }

            var key = Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(name));
            if (!lines.TryAdd(key, number))
            {
                error = $"line {number}: user '{name}' is given on line {lines[key]} too; keep one line per user";
                return false;
            }

            passwords[key] = SHA256.HashData(Encoding.UTF8.GetBytes(password));
        }

        if (passwords.Count == 0)
        {
            error = "has no users; write one user:password a line (lines starting with # are comments)";
            return false;
        }

        users = new Socks5Users(passwords);
        error = null;
        return true;
    }
}
