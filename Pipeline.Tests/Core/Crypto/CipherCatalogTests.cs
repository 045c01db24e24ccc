using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

public sealed class CipherCatalogTests
{
    /// <summary>PROTOCOL.md's method table with the sizes the reference implementations use.</summary>
    [Theory]
    [InlineData("aes-128-gcm", 16, 16)]
    [InlineData("aes-192-gcm", 24, 24)]
    [InlineData("aes-256-gcm", 32, 32)]
    [InlineData("chacha20-ietf-poly1305", 32, 32)]
    [InlineData("xchacha20-ietf-poly1305", 32, 32)]
    [InlineData("chacha20-poly1305", 32, 32)]
    [InlineData("aes-128-ocb", 16, 16)]
    [InlineData("aes-256-ocb", 32, 32)]
    [InlineData("2022-blake3-aes-128-gcm", 16, 16)]
    [InlineData("2022-blake3-aes-256-gcm", 32, 32)]
    [InlineData("2022-blake3-chacha20-poly1305", 32, 32)]
    [InlineData("aes-128-cfb", 16, 16)]
    [InlineData("aes-192-ctr", 24, 16)]
    [InlineData("aes-256-cfb1", 32, 16)]
    [InlineData("camellia-256-ofb", 32, 16)]
    [InlineData("bf-cfb", 16, 8)]
    [InlineData("cast5-cfb", 16, 8)]
    [InlineData("des-cfb", 8, 8)]
    [InlineData("idea-cfb", 16, 8)]
    [InlineData("rc2-cfb", 16, 8)]
    [InlineData("seed-cfb", 16, 16)]
    [InlineData("salsa20", 32, 8)]
    [InlineData("chacha20", 32, 8)]
    [InlineData("chacha20-ietf", 32, 12)]
    [InlineData("xchacha20", 32, 24)]
    [InlineData("rc4", 16, 0)]
    [InlineData("rc4-md5", 16, 16)]
    [InlineData("table", 0, 0)]
    [InlineData("none", 0, 0)]
    [InlineData("plain", 0, 0)]
    public void SizesMatchTheReferenceImplementations(string method, int keySize, int ivSize)
    {
        Assert.True(CipherCatalog.TryGet(method, out var cipher));
        Assert.Equal(keySize, cipher.KeySize);
        Assert.Equal(ivSize, cipher.SaltSize);
    }

    [Fact]
    public void CoversTheWholeMethodTable()
    {
        string[] expected =
        [
            "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305",
            "chacha20-poly1305", "aes-128-ocb", "aes-192-ocb", "aes-256-ocb",
            "2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305",
            .. new[] { 128, 192, 256 }.SelectMany(b => new[] { "cfb", "ctr", "ofb", "cfb8", "cfb1" }.Select(m => $"aes-{b}-{m}")),
            .. new[] { 128, 192, 256 }.SelectMany(b => new[] { "cfb", "ctr", "ofb" }.Select(m => $"camellia-{b}-{m}")),
            "bf-cfb", "cast5-cfb", "des-cfb", "idea-cfb", "rc2-cfb", "seed-cfb", "salsa20", "chacha20", "chacha20-ietf",
            "xchacha20", "rc4", "rc4-md5", "table", "none", "plain",
        ];
        Assert.Equal(expected.Order(), CipherCatalog.All.Select(c => c.Name).Order());
    }

    [Fact]
    public void LookupIgnoresCaseAndSurroundingSpace()
    {
        Assert.True(CipherCatalog.TryGet(" AES-256-GCM ", out var cipher));
        Assert.Equal("aes-256-gcm", cipher.Name);
    }

    [Fact]
    public void UnknownMethodSuggestsCloseNames()
    {
        Assert.False(CipherCatalog.TryGet("aes-256-gmc", out _, out var error));
        Assert.StartsWith("method:", error);
        Assert.Contains("aes-256-gcm", error);
        Assert.DoesNotContain("\n", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2022-blake3-chacha8-poly1305")]
    [InlineData("2022-BLAKE3-ChaCha12-Poly1305 ")]
    public void OptionalReducedRoundChaCha2022Methods_AreNamedAsNotImplemented_NotAsUnknown(string name)
    {
        // SIP022 § 4: 2022-blake3-chacha8-poly1305 and -chacha12- are optional (MAY); a user coming from a
        // shadowsocks-rust build that has them is told that, and what to use instead.
        Assert.False(CipherCatalog.TryGet(name, out _, out var error));
        Assert.StartsWith("method:", error);
        Assert.Contains(name.Trim().ToLowerInvariant(), error, StringComparison.Ordinal);
        Assert.Contains("does not implement", error, StringComparison.Ordinal);
        Assert.Contains("2022-blake3-chacha20-poly1305", error, StringComparison.Ordinal);
        Assert.DoesNotContain("unknown method", error, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TableIsAPermutationAndDecryptInvertsIt()
    {
        CipherCatalog.TryGet("table", out var table);
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var encrypted = new byte[256];
        using (var encryptor = table.CreateStream("secret"u8, [], encrypt: true))
        {
            encryptor.Process(all, encrypted);
        }

        Assert.Equal(256, encrypted.Distinct().Count());
        Assert.NotEqual(all, encrypted);
        using var decryptor = table.CreateStream("secret"u8, [], encrypt: false);
        decryptor.Process(encrypted, encrypted);
        Assert.Equal(all, encrypted);
    }

    [Fact]
    public void NoneLeavesBytesAlone()
    {
        CipherCatalog.TryGet("none", out var none);
        var data = "hello"u8.ToArray();
        var output = new byte[5];
        using var stream = none.CreateStream([], [], encrypt: true);
        stream.Process(data, output);
        Assert.Equal(data, output);
    }

    [Fact]
    public void XChaChaAeadKeepsWorkingAcrossNoncePrefixChanges()
    {
        // The nonce counter's low bytes change on every call, so the HChaCha20 subkey changes too.
        CipherCatalog.TryGet("xchacha20-ietf-poly1305", out var cipher);
        using var aead = cipher.CreateAead(new byte[32]);
        var nonce = new byte[24];
        for (var i = 0; i < 300; i++)
        {
            nonce[0] = (byte)i;
            nonce[1] = (byte)(i >> 8);
            var body = new byte[7];
            var tag = new byte[16];
            aead.Encrypt(nonce, "payload"u8, body, tag);
            var back = new byte[7];
            Assert.True(aead.TryDecrypt(nonce, body, tag, back));
            Assert.Equal("payload"u8.ToArray(), back);
        }
    }
}
