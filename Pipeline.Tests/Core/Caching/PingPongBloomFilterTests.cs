using Shadowsocks.Pipeline.Core.Caching;

namespace Shadowsocks.Pipeline.Tests.Core.Caching;

public sealed class PingPongBloomFilterTests
{
    [Fact]
    public void SecondSightingIsAReplay()
    {
        var filter = new PingPongBloomFilter(1000, 1e-6);
        var salt = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        Assert.True(filter.TryAdd(salt));
        Assert.False(filter.TryAdd(salt));
        Assert.False(filter.TryAdd(salt));
        salt[31] ^= 1;
        Assert.True(filter.TryAdd(salt));
    }

    [Fact]
    public void RemembersAtLeastHalfTheCapacity_ThenForgets()
    {
        // A fixed key: with a random one a run can meet a false positive among the 999 fresh items (seen once in CI-like runs).
        var filter = new PingPongBloomFilter(1000, 1e-6, new byte[32]);
        var first = BitConverter.GetBytes(-1L);
        Assert.True(filter.TryAdd(first));
        for (var i = 0; i < 998; i++)
        {
            Assert.True(filter.TryAdd(BitConverter.GetBytes((long)i)));
        }

        Assert.False(filter.TryAdd(first)); // 999 items later: still remembered

        for (var i = 1000; i < 1600; i++)
        {
            filter.TryAdd(BitConverter.GetBytes((long)i));
        }

        Assert.True(filter.TryAdd(first)); // two swaps later it has been forgotten: fixed memory
    }

    [Fact]
    public void FalsePositiveRateIsNearTheConfiguredOne()
    {
        var filter = new PingPongBloomFilter(20_000, 1e-3);
        for (var i = 0; i < 9_999; i++)
        {
            filter.TryAdd(BitConverter.GetBytes((long)i));
        }

        var falsePositives = 0;
        for (var i = 0; i < 100_000; i++)
        {
            if (!filter.TryAdd(BitConverter.GetBytes(1_000_000L + i)))
            {
                falsePositives++;
            }

            if (i % 5_000 == 0)
            {
                filter = Refill(filter);
            }
        }

        // Expected about 100 (1e-3 of 100,000 at most half full); allow generous noise, catch a broken hash.
        Assert.InRange(falsePositives, 0, 300);
    }

    [Fact]
    public void DefaultSizeMatchesLibev()
    {
        var filter = new PingPongBloomFilter();
        Assert.InRange(filter.MemoryBytes, 3_000_000, 4_000_000); // two filters of 500,000 entries at 1e-6
    }

    private static PingPongBloomFilter Refill(PingPongBloomFilter old)
    {
        _ = old;
        var filter = new PingPongBloomFilter(20_000, 1e-3);
        for (var i = 0; i < 9_999; i++)
        {
            filter.TryAdd(BitConverter.GetBytes((long)i));
        }

        return filter;
    }
}
