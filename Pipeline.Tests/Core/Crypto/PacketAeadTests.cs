using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

public sealed class PacketAeadTests
{
    private static readonly string[] s_covered = ["aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"];

    public static TheoryData<string> Covered() => new(s_covered);

    [Theory]
    [MemberData(nameof(Covered))]
    public void Seal_GivesTheBytesOfDotNetsAead_WithANewKeyEveryTime(string method)
    {
        var aead = Get(method, out var cipher);
        var random = new Random(method.Length);
        foreach (var length in new[] { 0, 1, 15, 16, 64, 1400, 65_507 })
        {
            var key = RandomNumberGenerator.GetBytes(cipher.KeySize);
            var nonce = RandomNumberGenerator.GetBytes(12);
            var plaintext = new byte[length];
            random.NextBytes(plaintext);
            var ciphertext = new byte[length];
            var tag = new byte[16];
            aead.Seal(key, nonce, plaintext, ciphertext, tag);

            var expected = new byte[length];
            var expectedTag = new byte[16];
            using (var reference = cipher.CreateAead(key))
            {
                reference.Encrypt(nonce, plaintext, expected, expectedTag);
            }

            Assert.Equal(expected, ciphertext);
            Assert.Equal(expectedTag, tag);
        }
    }

    [Theory]
    [MemberData(nameof(Covered))]
    public void TryOpen_InPlace_RoundTrips_AndRejectsAnyFlippedBit(string method)
    {
        var aead = Get(method, out var cipher);
        var key = RandomNumberGenerator.GetBytes(cipher.KeySize);
        var nonce = new byte[12];
        var original = RandomNumberGenerator.GetBytes(100);
        var buffer = original.ToArray();
        var tag = new byte[16];
        aead.Seal(key, nonce, buffer, buffer, tag);
        Assert.NotEqual(original, buffer);

        var sealedCopy = buffer.ToArray();
        Assert.True(aead.TryOpen(key, nonce, buffer, tag, buffer));
        Assert.Equal(original, buffer);

        foreach (var (flipCipher, position) in new[] { (true, 0), (true, 99), (false, 0), (false, 15) })
        {
            var ciphertext = sealedCopy.ToArray();
            var badTag = tag.ToArray();
            (flipCipher ? ciphertext : badTag)[position] ^= 1;
            var plaintext = new byte[100];
            plaintext.AsSpan().Fill(0xAA);
            Assert.False(aead.TryOpen(key, nonce, ciphertext, badTag, plaintext));
            Assert.All(plaintext, b => Assert.Equal(0, b));
        }

        var otherKey = RandomNumberGenerator.GetBytes(cipher.KeySize);
        Assert.False(aead.TryOpen(otherKey, nonce, sealedCopy, tag, new byte[100]));
    }

    [Fact]
    public void OneThreadSwitchingCiphers_AndManyThreadsAtOnce_EachGetTheirOwnResult()
    {
        var methods = s_covered;
        var jobs = Enumerable.Range(0, 4000).Select(i =>
        {
            var aead = Get(methods[i % methods.Length], out var cipher);
            var key = RandomNumberGenerator.GetBytes(cipher.KeySize);
            var plaintext = RandomNumberGenerator.GetBytes(i % 300);
            var expected = new byte[plaintext.Length];
            var expectedTag = new byte[16];
            using (var reference = cipher.CreateAead(key))
            {
                reference.Encrypt(new byte[12], plaintext, expected, expectedTag);
            }

            return (aead, key, plaintext, expected, expectedTag);
        }).ToArray();

        Parallel.For(0, jobs.Length, new ParallelOptions { MaxDegreeOfParallelism = 6 }, i =>
        {
            var (aead, key, plaintext, expected, expectedTag) = jobs[i];
            var ciphertext = new byte[plaintext.Length];
            var tag = new byte[16];
            aead.Seal(key, new byte[12], plaintext, ciphertext, tag);
            Assert.Equal(expected, ciphertext);
            Assert.Equal(expectedTag, tag);
            Assert.True(aead.TryOpen(key, new byte[12], ciphertext, tag, ciphertext));
            Assert.Equal(plaintext, ciphertext);
        });
    }

    [Theory]
    [InlineData("xchacha20-ietf-poly1305")]
    [InlineData("chacha20-poly1305")]
    [InlineData("aes-256-ocb")]
    [InlineData("aes-256-cfb")]
    public void MethodsOpenSslDoesNotImplement_AreLeftToTheirOwnAead(string method)
    {
        CipherCatalog.TryGet(method, out var cipher);
        Assert.False(PacketAead.TryGet(cipher, out _));
    }

    [Fact]
    public void WrongSizes_AreRefused()
    {
        var aead = Get("aes-256-gcm", out _);
        var key = new byte[32];
        Assert.Throws<ArgumentException>(() => aead.Seal(key, new byte[8], new byte[4], new byte[4], new byte[16]));
        Assert.Throws<ArgumentException>(() => aead.Seal(key, new byte[12], new byte[4], new byte[3], new byte[16]));
        Assert.Throws<ArgumentException>(() => aead.TryOpen(key, new byte[12], new byte[4], new byte[12], new byte[4]));
    }

    private static PacketAead Get(string method, out CipherInfo cipher)
    {
        Assert.True(CipherCatalog.TryGet(method, out cipher));
        Assert.True(PacketAead.TryGet(cipher, out var aead), $"{method} should have a packet AEAD here");
        return aead;
    }
}
