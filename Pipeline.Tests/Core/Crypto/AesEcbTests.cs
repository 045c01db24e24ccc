using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

/// <summary>The one-block AES of the 2022 headers against FIPS-197's examples and .NET's (OpenSSL's) AES-ECB.</summary>
public sealed class AesEcbTests
{
    [Theory]
    [InlineData("000102030405060708090a0b0c0d0e0f", "69c4e0d86a7b0430d8cdb78070b4c55a")]
    [InlineData("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "8ea2b7ca516745bfeafc49904b496089")]
    public void FipsExample_EncryptsAndDecrypts(string key, string expected)
    {
        var plain = Convert.FromHexString("00112233445566778899aabbccddeeff");
        var ecb = new AesEcb(Convert.FromHexString(key));
        var sealedBlock = new byte[16];
        var opened = new byte[16];

        ecb.Encrypt(plain, sealedBlock);
        ecb.Decrypt(sealedBlock, opened);

        Assert.Equal(expected, Convert.ToHexStringLower(sealedBlock));
        Assert.Equal(plain, opened);
        AesBlock.Encrypt(Convert.FromHexString(key), plain, sealedBlock); // the per-key form
        Assert.Equal(expected, Convert.ToHexStringLower(sealedBlock));
        AesBlock.Decrypt(Convert.FromHexString(key), sealedBlock, opened);
        Assert.Equal(plain, opened);
    }

    [Fact]
    public void RandomKeysAndBlocks_MatchDotNetsAes_FromManyThreadsAtOnce()
    {
        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 200; i++)
            {
                var key = RandomNumberGenerator.GetBytes(i % 2 == 0 ? 16 : 32);
                var block = RandomNumberGenerator.GetBytes(16);
                using var reference = Aes.Create();
                reference.Key = key;
                var ecb = new AesEcb(key);
                var ours = new byte[16];
                ecb.Encrypt(block, ours);
                Assert.Equal(reference.EncryptEcb(block, PaddingMode.None), ours);
                ecb.Decrypt(block, ours);
                Assert.Equal(reference.DecryptEcb(block, PaddingMode.None), ours);
            }
        });
    }
}
