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

    [Fact]
    public async Task OverBudget_EveryConnectionStillMovesAllItsBytes_AndTheBudgetEndsEmpty()
    {
        // One smallest buffer for the whole chain (local and server share it): every pump runs one chunk at a time,
        // the local's header with first data and the server's data after the header included.
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var budget = new ReadBudget(ReadBudget.Smallest);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", tune: o => o with { ReadBudget = budget });
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ =>
            Transfer.EchoThroughSocks5Async(chain.Local.LocalEndPoint, destination.EndPoint.Port, 2, 2 << 20, cancel.Token)));

        for (var i = 0; i < 200 && (chain.Local.ActiveSessions > 0 || chain.Server.ActiveSessions > 0 || budget.InFlight != 0); i++)
        {
            await Task.Delay(50, cancel.Token);
        }

        Assert.Equal(0, chain.Local.ActiveSessions + chain.Server.ActiveSessions);
        Assert.Equal(0, budget.InFlight); // every chunk counted in was counted out: nothing leaks into later connections' share
        Assert.Equal(0, budget.Busy);
    }
}
