using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

public sealed class CipherDuplexTests
{
    public static TheoryData<string> AllMethods() => CipherMethods.All();

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void AFullPlaintextRead_EncryptsIntoA64KiBBuffer(string method)
    {
        // The encrypt stage rents its output from the shared pool by MaxOutputSize; one byte over 64 KiB would make
        // every chunk of a bulk transfer hold a 128 KiB array.
        var cipher = CipherMethods.Get(method);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, CipherMethods.MasterKey(cipher));
        var plaintext = new byte[CipherDuplex.PlainReceiveSize];
        Assert.InRange(encryptor.MaxOutputSize(plaintext.Length), plaintext.Length, 64 * 1024);
        var output = new byte[64 * 1024];
        var first = encryptor.Encrypt(plaintext, output);
        Assert.InRange(encryptor.MaxOutputSize(plaintext.Length), 0, 64 * 1024);
        Assert.InRange(encryptor.Encrypt(plaintext, output), 0, first);
    }
}
