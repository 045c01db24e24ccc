using System.Text;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

public sealed class KeyDerivationTests
{
    public static TheoryData<string, int, string> EvpVectors()
    {
        // Vectors/evp.txt: `openssl enc -md md5 -nosalt -pass pass:P -P` (see make-vectors.sh).
        var data = new TheoryData<string, int, string>();
        foreach (var line in File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Vectors", "evp.txt")))
        {
            var f = line.Split('\t');
            data.Add(f[0], int.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture), f[2]);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(EvpVectors))]
    public void EvpBytesToKeyMatchesOpenSsl(string password, int length, string key) =>
        Assert.Equal(key, Convert.ToHexStringLower(KeyDerivation.EvpBytesToKey(Encoding.UTF8.GetBytes(password), length)));

    [Fact]
    public void SessionSubkeyIsHkdfSha1WithSsSubkeyInfo()
    {
        var master = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
        var salt = Enumerable.Range(100, 32).Select(i => (byte)i).ToArray();
        var subkey = new byte[32];
        KeyDerivation.SessionSubkey(master, salt, subkey);
        var expected = new byte[32];
        KeyDerivation.HkdfSha1(master, salt, "ss-subkey"u8, expected);
        Assert.Equal(expected, subkey);
        KeyDerivation.HkdfSha1(master, salt, "ss-subkeY"u8, expected);
        Assert.NotEqual(expected, subkey);
    }

    [Fact]
    public void TableAndNoneUseThePasswordBytes()
    {
        CipherCatalog.TryGet("table", out var table);
        Assert.Equal("pässword"u8.ToArray(), KeyDerivation.MasterKeyFromPassword(table, "pässword"));
    }

    [Theory]
    [InlineData("aes-256-gcm", 32)]
    [InlineData("aes-128-gcm", 16)]
    [InlineData("des-cfb", 8)]
    public void Base64KeyOfTheRightLengthIsAccepted(string method, int size)
    {
        CipherCatalog.TryGet(method, out var cipher);
        var raw = Enumerable.Range(0, size).Select(i => (byte)(i * 37)).ToArray();
        Assert.True(KeyDerivation.TryParseBase64Key(cipher, Convert.ToBase64String(raw), out var key, out var error), error);
        Assert.Equal(raw, key);

        var urlSafe = Convert.ToBase64String(raw).Replace('+', '-').Replace('/', '_').TrimEnd('=');
        Assert.True(KeyDerivation.TryParseBase64Key(cipher, urlSafe, out key, out _));
        Assert.Equal(raw, key);
    }

    [Fact]
    public void Base64KeyOfTheWrongLengthOrNotBase64IsOneLineNamingTheFix()
    {
        CipherCatalog.TryGet("aes-256-gcm", out var cipher);
        Assert.False(KeyDerivation.TryParseBase64Key(cipher, Convert.ToBase64String(new byte[16]), out _, out var error));
        Assert.Contains("32 bytes", error);
        Assert.Contains("genkey", error);
        Assert.DoesNotContain("\n", error, StringComparison.Ordinal);

        Assert.False(KeyDerivation.TryParseBase64Key(cipher, "not base64 at all!", out _, out error));
        Assert.StartsWith("key:", error);
    }
}
