using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

public sealed class OpenSslAeadTests
{
    private static readonly string[] s_methods = ["aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"];

    public static TheoryData<string> Methods() => new(s_methods);

    [Theory]
    [MemberData(nameof(Methods))]
    public void TheCatalogUsesIt_AndItSealsAsDotNetDoes_ChunkAfterChunk_AcrossReleases(string method)
    {
        Assert.True(CipherCatalog.TryGet(method, out var info));
        var key = RandomNumberGenerator.GetBytes(info.KeySize);
        using var cipher = info.CreateAead(key);
        Assert.IsType<OpenSslAead>(cipher);
        using var reference = Reference(method, key);

        var nonce = new byte[12];
        foreach (var length in new[] { 0, 1, 2, 16, 100, 0x3FFF, 65_536 })
        {
            var plaintext = RandomNumberGenerator.GetBytes(length);
            var ciphertext = new byte[length];
            var tag = new byte[16];
            cipher.Encrypt(nonce, plaintext, ciphertext, tag);
            var expected = new byte[length];
            var expectedTag = new byte[16];
            reference.Encrypt(nonce, plaintext, expected, expectedTag);
            Assert.Equal(expected, ciphertext);
            Assert.Equal(expectedTag, tag);

            var opened = new byte[length];
            Assert.True(cipher.TryDecrypt(nonce, ciphertext, tag, opened));
            Assert.Equal(plaintext, opened);

            nonce[0]++; // the stream's nonce counter moves on
            if (length % 2 == 0)
            {
                cipher.ReleaseKeySchedule(); // a quiet spell: the next chunk sets the key up again
            }
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void TheCatalogsCipher_IsTheProvidersOwn_NotTheLegacyOneLookedUpOnEverySetUp(string method) =>
        Assert.NotEqual(Evp(method), LibCrypto.AeadCipher(method));

    [Theory]
    [MemberData(nameof(Methods))]
    public void InPlace_AndTampering(string method)
    {
        CipherCatalog.TryGet(method, out var info);
        var key = RandomNumberGenerator.GetBytes(info.KeySize);
        using var cipher = new OpenSslAead(Evp(method), key);
        var nonce = RandomNumberGenerator.GetBytes(12);
        var original = RandomNumberGenerator.GetBytes(500);
        var buffer = original.ToArray();
        var tag = new byte[16];
        cipher.Encrypt(nonce, buffer, buffer, tag);
        var sealedBytes = buffer.ToArray();
        Assert.True(cipher.TryDecrypt(nonce, buffer, tag, buffer));
        Assert.Equal(original, buffer);

        var badTag = tag.ToArray();
        badTag[15] ^= 0x80;
        var output = Enumerable.Repeat((byte)0xAA, 500).ToArray();
        Assert.False(cipher.TryDecrypt(nonce, sealedBytes, badTag, output));
        Assert.All(output, b => Assert.Equal(0, b));

        var badCiphertext = sealedBytes.ToArray();
        badCiphertext[250] ^= 1;
        Assert.False(cipher.TryDecrypt(nonce, badCiphertext, tag, output));

        // A failure leaves the context usable: the genuine chunk still opens.
        Assert.True(cipher.TryDecrypt(nonce, sealedBytes, tag, output));
        Assert.Equal(original, output);
    }

    [Fact]
    public void AfterDispose_ItRefuses()
    {
        var cipher = new OpenSslAead(LibCrypto.EVP_aes_256_gcm(), new byte[32]);
        cipher.Encrypt(new byte[12], new byte[4], new byte[4], new byte[16]);
        cipher.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cipher.Encrypt(new byte[12], new byte[4], new byte[4], new byte[16]));
        Assert.Throws<ArgumentException>(() => new OpenSslAead(LibCrypto.EVP_aes_256_gcm(), new byte[32]).Encrypt(new byte[8], new byte[4], new byte[4], new byte[16]));
    }

    private static nint Evp(string method) => method switch
    {
        "aes-128-gcm" => LibCrypto.EVP_aes_128_gcm(),
        "aes-192-gcm" => LibCrypto.EVP_aes_192_gcm(),
        "aes-256-gcm" => LibCrypto.EVP_aes_256_gcm(),
        _ => LibCrypto.EVP_chacha20_poly1305(),
    };

    private static IAeadCipher Reference(string method, byte[] key) =>
        method.StartsWith("aes", StringComparison.Ordinal) ? new DotNetAesGcm(key) : new DotNetChaCha20Poly1305(key);
}
