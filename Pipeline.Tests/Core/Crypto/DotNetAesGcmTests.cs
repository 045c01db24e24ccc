using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

public sealed class DotNetAesGcmTests
{
    [Fact]
    public void AfterReleasingTheKeySchedule_SealsAndOpensAsThePlatformDoes()
    {
        var key = Enumerable.Range(0, 32).Select(i => (byte)(i * 5)).ToArray();
        var nonce = new byte[12];
        var plaintext = "released between bursts"u8.ToArray();
        using var platform = new AesGcm(key, 16);
        var expected = new byte[plaintext.Length];
        var expectedTag = new byte[16];
        platform.Encrypt(nonce, plaintext, expected, expectedTag);

        using var cipher = new DotNetAesGcm(key);
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[16];
        cipher.ReleaseKeySchedule(); // before first use: nothing to give back
        cipher.Encrypt(nonce, plaintext, ciphertext, tag);
        cipher.ReleaseKeySchedule();
        Assert.Equal(expected, ciphertext);
        Assert.Equal(expectedTag, tag);

        var opened = new byte[plaintext.Length];
        Assert.True(cipher.TryDecrypt(nonce, ciphertext, tag, opened));
        Assert.Equal(plaintext, opened);
        cipher.ReleaseKeySchedule();
        tag[0] ^= 1;
        Assert.False(cipher.TryDecrypt(nonce, ciphertext, tag, opened));
    }

    [Fact]
    public void AfterDispose_NeverRebuildsFromTheZeroedKey()
    {
        var cipher = new DotNetAesGcm(new byte[16]);
        cipher.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cipher.Encrypt(new byte[12], new byte[4], new byte[4], new byte[16]));
    }
}
