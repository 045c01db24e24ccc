using Microsoft.Reactive.Testing;
using Shadowsocks.Pipeline.Core.Caching;

namespace Shadowsocks.Pipeline.Tests.Core.Caching;

/// <summary>The LRU cache in virtual time: expiry exactly on time, sliding versus absolute, size bound, one eviction each.</summary>
public sealed class LruCacheTests
{
    private static readonly TimeSpan s_ttl = TimeSpan.FromSeconds(300);

    [Fact]
    public void EntryExpiresExactlyAtItsDeadline()
    {
        var scheduler = new TestScheduler();
        var evicted = new List<(string, EvictionReason, long)>();
        using var cache = new LruCache<string, int>(10, s_ttl, sliding: false, scheduler, (k, _, r) => evicted.Add((k, r, scheduler.Clock)));
        cache.Set("a", 1);
        scheduler.AdvanceBy(s_ttl.Ticks - 1);
        Assert.True(cache.TryGet("a", out var value));
        Assert.Equal(1, value);
        Assert.Empty(evicted);

        scheduler.AdvanceBy(1);
        Assert.Equal([("a", EvictionReason.Expired, s_ttl.Ticks)], evicted);
        Assert.False(cache.TryGet("a", out _));
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void SlidingEntryInUseIsNotEvicted_AbsoluteEntryIs()
    {
        var scheduler = new TestScheduler();
        var evicted = new List<string>();
        using var sliding = new LruCache<string, int>(10, s_ttl, sliding: true, scheduler, (k, _, _) => evicted.Add("sliding:" + k));
        using var absolute = new LruCache<string, int>(10, s_ttl, sliding: false, scheduler, (k, _, _) => evicted.Add("absolute:" + k));
        sliding.Set("busy", 1);
        absolute.Set("busy", 1);
        for (var i = 0; i < 10; i++)
        {
            scheduler.AdvanceBy(TimeSpan.FromSeconds(100).Ticks);
            sliding.TryGet("busy", out _);
            absolute.TryGet("busy", out _);
        }

        Assert.Equal(["absolute:busy"], evicted);
        Assert.True(sliding.TryGet("busy", out _));

        // Once idle, the sliding entry goes exactly one TTL after its last use.
        var lastUse = scheduler.Clock;
        scheduler.AdvanceBy(s_ttl.Ticks - 1);
        Assert.Single(evicted);
        scheduler.AdvanceBy(1);
        Assert.Equal(["absolute:busy", "sliding:busy"], evicted);
        Assert.Equal(lastUse + s_ttl.Ticks, scheduler.Clock);
    }

    [Fact]
    public void SizeBoundEvictsTheLeastRecentlyUsed()
    {
        var scheduler = new TestScheduler();
        var evicted = new List<(string, EvictionReason)>();
        using var cache = new LruCache<string, int>(3, s_ttl, sliding: true, scheduler, (k, _, r) => evicted.Add((k, r)));
        cache.Set("a", 1);
        cache.Set("b", 2);
        cache.Set("c", 3);
        cache.TryGet("a", out _); // b is now the least recently used
        cache.Set("d", 4);
        Assert.Equal([("b", EvictionReason.Capacity)], evicted);
        Assert.True(cache.TryGet("a", out _));
        Assert.False(cache.TryGet("b", out _));
        Assert.Equal(3, cache.Count);
    }

    [Fact]
    public void APeek_FindsALiveEntry_ButNeitherRefreshesItNorSavesItFromTheSizeBound()
    {
        var scheduler = new TestScheduler();
        var evicted = new List<(string, EvictionReason)>();
        using var cache = new LruCache<string, int>(2, s_ttl, sliding: true, scheduler, (k, _, r) => evicted.Add((k, r)));
        cache.Set("a", 1);
        cache.Set("b", 2);

        Assert.True(cache.TryPeek("a", out var value));
        Assert.Equal(1, value);
        cache.Set("c", 3); // a is still the least recently used
        Assert.Equal([("a", EvictionReason.Capacity)], evicted);
        Assert.False(cache.TryPeek("a", out _));

        scheduler.AdvanceBy((s_ttl - TimeSpan.FromSeconds(1)).Ticks);
        Assert.True(cache.TryPeek("b", out _));
        scheduler.AdvanceBy(TimeSpan.FromSeconds(2).Ticks); // b's life was not extended by the peek
        Assert.False(cache.TryPeek("b", out _));
    }

    [Fact]
    public void EveryEntryIsEvictedExactlyOnce()
    {
        var scheduler = new TestScheduler();
        var counts = new Dictionary<int, int>();
        var cache = new LruCache<int, int>(50, s_ttl, sliding: true, scheduler, (k, _, _) => counts[k] = counts.GetValueOrDefault(k) + 1);
        for (var i = 0; i < 100; i++)
        {
            cache.Set(i, i); // 50 go for capacity
        }

        cache.Set(99, 0); // replaced: the old value is evicted
        cache.Remove(98);
        scheduler.AdvanceBy(TimeSpan.FromSeconds(100).Ticks);
        cache.RemoveWhere(k => k % 10 == 0);
        scheduler.AdvanceBy(s_ttl.Ticks); // the rest expire
        cache.Set(1000, 0);
        cache.Dispose();
        cache.Dispose();
        Assert.Equal(101, counts.Count);
        Assert.All(counts.Where(kv => kv.Key != 99), kv => Assert.Equal(1, kv.Value));
        Assert.Equal(2, counts[99]); // the replaced value and the replacement
    }

    [Fact]
    public void GetOrAddCreatesOnceForConcurrentCallers()
    {
        var scheduler = new TestScheduler();
        using var cache = new LruCache<string, object>(10, s_ttl, sliding: true, scheduler);
        var created = 0;
        var values = new object[64];
        Parallel.For(0, values.Length, i => values[i] = cache.GetOrAdd("k", _ =>
        {
            Interlocked.Increment(ref created);
            return new object();
        }));
        Assert.Equal(1, created);
        Assert.All(values, v => Assert.Same(values[0], v));
    }

    [Fact]
    public void GetOrAddAfterDisposalThrowsWithoutMakingTheValue()
    {
        // A value made after disposal would belong to nobody: a UDP NAT entry's socket, open and watched, for good.
        var cache = new LruCache<string, object>(10, s_ttl, sliding: true, new TestScheduler());
        cache.Dispose();
        var created = 0;
        Assert.Throws<ObjectDisposedException>(() => cache.GetOrAdd("k", _ =>
        {
            created++;
            return new object();
        }));
        Assert.Equal(0, created);
    }
}
