using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>The codec of the local's direct connections (an ACL's bypass): the bytes as they are, both ways, any read size.</summary>
public sealed class PlainStreamCodecTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(0x3FFF + 1)]
    [InlineData(128 * 1024)]
    public void CopiesEachWay_AndPromisesNoMoreRoomThanTheInput(int length)
    {
        var input = RandomNumberGenerator.GetBytes(length);
        var codec = PlainStreamCodec.Instance;
        IStreamEncryptor encryptor = codec;
        IStreamDecryptor decryptor = codec;
        Assert.Equal(length, encryptor.MaxOutputSize(length));
        Assert.Equal(length, decryptor.MaxOutputSize(length));

        var encrypted = new byte[length];
        Assert.Equal(length, encryptor.Encrypt(input, encrypted));
        Assert.Equal(input, encrypted);

        var decrypted = new byte[length];
        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(encrypted, decrypted, out var written));
        Assert.Equal(length, written);
        Assert.Equal(input, decrypted);
    }
}
