using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

public sealed class CipherDuplexTests
{
    public static TheoryData<string> AllMethods() => CipherMethods.All();

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void AFullPlaintextRead_EncryptsIntoTheReadBuffersBucket_AtEveryBudgetSize(string method)
    {
        // The encrypt stage rents its output from the shared pool by MaxOutputSize; one byte over the bucket would make
        // every chunk of a bulk transfer hold an array twice the size.
        var cipher = CipherMethods.Get(method);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, CipherMethods.MasterKey(cipher));
        for (var bucket = ReadBudget.Largest; bucket >= ReadBudget.Smallest; bucket /= 2)
        {
            var plaintext = new byte[CipherDuplex.PlainReadIn(bucket)];
            Assert.InRange(encryptor.MaxOutputSize(plaintext.Length), plaintext.Length, bucket);
            var output = new byte[bucket];
            var first = encryptor.Encrypt(plaintext, output);
            Assert.InRange(encryptor.MaxOutputSize(plaintext.Length), 0, bucket);
            Assert.InRange(encryptor.Encrypt(plaintext, output), 0, first);
        }
    }
}
