using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Hosts.Service;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

/// <summary>
/// The idle trim collects once after a burst, on the first quiet second, and never while the process is busy; a quiet
/// process has no check running until the next garbage collection or the pool's next new buffer. A bulk burst, which
/// rents pooled buffers and allocates next to nothing, is busy, and the trim after it gives the pool's buffers back.
/// </summary>
public sealed class IdleMemoryTrimTests
{
    private const long MiB = 1024 * 1024;

    [Fact]
    public void CollectsOnceAfterABurst_OnTheFirstQuietSecond_NeverWhileBusy()
    {
        long allocated = 100 * MiB;
        var collections = 0;
        using var trim = new IdleMemoryTrim(new ManualTime(), new ChunkPool(), () => allocated, () => collections++, static _ => new Watching());

        trim.Tick();                 // nothing allocated: nothing to give back
        Assert.Equal(0, collections);

        for (var second = 0; second < 10; second++)
        {
            allocated += 10 * MiB;   // busy: 10 MiB a second
            trim.Tick();
        }

        Assert.Equal(0, collections); // never during the burst

        trim.Tick();                 // the first quiet second after 100 MiB
        Assert.Equal(1, collections);
        Assert.Equal(1, trim.Trims);

        for (var second = 0; second < 10; second++)
        {
            allocated += 100 * 1024; // quiet, a trickle
            trim.Tick();
        }

        Assert.Equal(1, collections); // no second collection for a trickle

        allocated += 4 * MiB;        // a small burst is not worth a collection
        trim.Tick();
        trim.Tick();
        Assert.Equal(1, collections);

        allocated += 20 * MiB;       // a burst again, then quiet: one more
        trim.Tick();
        trim.Tick();
        Assert.Equal(2, collections);
    }

    [Fact]
    public void AQuietProcess_StopsChecking_AndTheNextCollectionStartsTheChecksAgain()
    {
        long allocated = 100 * MiB;
        var collections = 0;
        var time = new ManualTime();
        Action? onCollection = null;
        var watching = new Watching();
        using var trim = new IdleMemoryTrim(time, new ChunkPool(), () => allocated, () => collections++, callback =>
        {
            onCollection = callback;
            return watching;
        });
        Assert.Equal([TimeSpan.FromSeconds(1)], time.Periods); // created checking every second
        Assert.NotNull(onCollection);

        allocated += 10 * MiB; // busy: the checks go on
        trim.Tick();
        Assert.True(trim.Checking);

        trim.Tick(); // quiet, and 10 MiB is not worth a trim: no timer any more
        Assert.False(trim.Checking);
        Assert.Equal(Timeout.InfiniteTimeSpan, time.Periods[^1]);
        Assert.Equal(0, collections);

        allocated += 16 * MiB; // enough for a collection, which starts the checks again
        onCollection();
        Assert.True(trim.Checking);
        Assert.Equal(TimeSpan.FromSeconds(1), time.Periods[^1]);

        trim.Tick(); // the first quiet second after it: the trim (26 MiB since the last), and the checks stop again
        Assert.Equal(1, collections);
        Assert.False(trim.Checking);
        Assert.Equal(Timeout.InfiniteTimeSpan, time.Periods[^1]);

        onCollection(); // the trim's own collection: one more check, which finds nothing to do
        trim.Tick();
        Assert.Equal(1, collections);
        Assert.False(trim.Checking);

        trim.Dispose();
        Assert.True(watching.IsDisposed, "the watch for collections outlived the trim");
    }

    [Fact]
    public void ABulkBurstFromThePool_IsBusy_AndTheTrimAfterItGivesThePoolsBuffersBack()
    {
        long allocated = 100 * MiB;
        var collections = 0;
        var pool = new ChunkPool();
        using var trim = new IdleMemoryTrim(new ManualTime(), pool, () => allocated, () =>
        {
            collections++;
            GC.Collect();
        }, static _ => new Watching());

        allocated += 20 * MiB; // connections open: worth a trim once quiet
        trim.Tick();

        // The bulk transfer: 128 KiB buffers rented and returned, 8 MiB a second, nothing allocated once the pool has them.
        var held = RentAndReturn(pool, 32);
        for (var second = 0; second < 5; second++)
        {
            for (var round = 0; round < 2; round++)
            {
                RentAndReturn(pool, 32);
            }

            trim.Tick();
            Assert.True(collections == 0, "a trim while the pool's buffers moved 8 MiB a second");
        }

        Assert.Equal(32 * 128 * 1024, pool.PooledBytes);

        trim.Tick(); // the first quiet second after the burst
        Assert.Equal(1, collections);
        Assert.Equal(0, pool.PooledBytes);
        Assert.All(held, buffer => Assert.False(buffer.IsAlive, "a pooled buffer outlived the trim"));
    }

    [Fact]
    public void TheChecksStopped_ThePoolsNextNewBuffer_StartsThemAgain()
    {
        var time = new ManualTime();
        var pool = new ChunkPool();
        using var trim = new IdleMemoryTrim(time, pool, static () => 0, static () => { }, static _ => new Watching());
        trim.Tick(); // quiet, nothing worth a trim: the checks stop
        Assert.False(trim.Checking);

        pool.Return(pool.Rent(128 * 1024)); // a burst after a trim: the pool allocates
        Assert.True(trim.Checking);
        Assert.Equal(TimeSpan.FromSeconds(1), time.Periods[^1]);

        trim.Tick(); // a rental of 128 KiB is a quiet second, and 128 KiB not worth a trim
        Assert.False(trim.Checking);
        pool.Return(pool.Rent(128 * 1024)); // from the pool: no new buffer, no checks
        Assert.False(trim.Checking);

        trim.Dispose();
        pool.Trim();
        pool.Return(pool.Rent(128 * 1024)); // a disposed trim is not called back
        Assert.False(trim.Checking);
    }

    /// <summary>Rents <paramref name="count"/> 128 KiB buffers at once, as many busy connections' reads, and returns them.</summary>
    private static WeakReference[] RentAndReturn(ChunkPool pool, int count)
    {
        var buffers = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            buffers[i] = pool.Rent(128 * 1024);
        }

        var references = new WeakReference[count];
        for (var i = 0; i < count; i++)
        {
            references[i] = new WeakReference(buffers[i]);
            pool.Return(buffers[i]);
        }

        return references;
    }

    /// <summary>Stands in for the watch on the real collector (the test calls its callback itself).</summary>
    private sealed class Watching : IDisposable
    {
        public bool IsDisposed { get; private set; }

        public void Dispose() => IsDisposed = true;
    }

    /// <summary>A clock whose timer never fires (the test calls Tick itself); it records the periods it is given.</summary>
    private sealed class ManualTime : TimeProvider
    {
        public List<TimeSpan> Periods { get; } = [];

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Periods.Add(period);
            return new NeverTimer(Periods);
        }

        private sealed class NeverTimer(List<TimeSpan> periods) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                periods.Add(period);
                return true;
            }

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
