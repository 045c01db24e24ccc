using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

public sealed class Sha1HmacTests
{
    [Fact]
    public void TheLibraryIsThere()
    {
        // The fast path is what runs in production on this platform; a machine without it would silently be slower.
        Assert.True(LibCrypto.IsAvailable);
    }

    [Theory]
    // RFC 5869 appendix A, test cases 4 and 7 (SHA-1).
    [InlineData("0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9", 42,
        "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896")]
    [InlineData("0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "", "", 42,
        "2c91117204d745f3500d636a62f64f0ab3bae548aa53d423b0d1f27ebba6f5e5673a081d70cce7acfc48")]
    public void Hkdf_MatchesRfc5869(string ikm, string salt, string info, int length, string okm)
    {
        var output = new byte[length];
        Sha1Hmac.Hkdf(Convert.FromHexString(ikm), Convert.FromHexString(salt), Convert.FromHexString(info), output);
        Assert.Equal(okm, Convert.ToHexStringLower(output));
    }

    [Fact]
    public void Hkdf_MatchesDotNetsHkdf_ForEveryShapeShadowsocksUses_AndMore()
    {
        var random = new Random(7);
        foreach (var keyLength in new[] { 0, 16, 24, 32, 100 })
        {
            foreach (var saltLength in new[] { 0, 16, 24, 32, 64, 65 })
            {
                foreach (var outputLength in new[] { 1, 16, 20, 24, 32, 41, 100 })
                {
                    var key = new byte[keyLength];
                    var salt = new byte[saltLength];
                    var info = new byte[random.Next(0, 40)];
                    random.NextBytes(key);
                    random.NextBytes(salt);
                    random.NextBytes(info);
                    var ours = new byte[outputLength];
                    var theirs = new byte[outputLength];
                    Sha1Hmac.Hkdf(key, salt, info, ours);
                    HKDF.DeriveKey(HashAlgorithmName.SHA1, key, theirs, salt, info);
                    Assert.Equal(theirs, ours);
                }
            }
        }
    }

    [Fact]
    public void Hkdf_GivesTheSameBytesOnManyThreadsAtOnce()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var salts = Enumerable.Range(0, 2000).Select(_ => RandomNumberGenerator.GetBytes(32)).ToArray();
        var expected = salts.Select(salt => HKDF.DeriveKey(HashAlgorithmName.SHA1, key, 32, salt, "ss-subkey"u8.ToArray())).ToArray();
        var actual = new byte[salts.Length][];
        Parallel.For(0, salts.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            actual[i] = new byte[32];
            KeyDerivation.SessionSubkey(key, salts[i], actual[i]);
        });
        Assert.Equal(expected, actual);
    }
}
