using System.Collections.Concurrent;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

public sealed class SaltSourceTests
{
    [Fact]
    public void Salts_NeverRepeat_AcrossBatchesAndThreads()
    {
        var seen = new ConcurrentDictionary<string, bool>();
        Parallel.For(0, 4, _ =>
        {
            foreach (var size in Enumerable.Repeat(new[] { 16, 24, 32 }, 1000).SelectMany(s => s))
            {
                var salt = new byte[size];
                SaltSource.Fill(salt);
                Assert.True(seen.TryAdd(Convert.ToHexString(salt), true), "a salt came out twice");
            }
        });
        Assert.Equal(12_000, seen.Count);
    }

    [Fact]
    public void BitsAreBalanced_AndLargeRequestsWork()
    {
        var large = new byte[5000];
        SaltSource.Fill(large);
        var ones = large.Sum(b => System.Numerics.BitOperations.PopCount(b));
        // 40,000 fair bits: the mean is 20,000 and the standard deviation 100.
        Assert.InRange(ones, 19_400, 20_600);
    }
}
