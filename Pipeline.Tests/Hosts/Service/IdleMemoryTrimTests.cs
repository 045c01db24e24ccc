using Shadowsocks.Pipeline.Hosts.Service;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

/// <summary>The idle trim collects once after a burst, on the first quiet second, and never while the process is busy.</summary>
public sealed class IdleMemoryTrimTests
{
    private const long MiB = 1024 * 1024;

    [Fact]
    public void CollectsOnceAfterABurst_OnTheFirstQuietSecond_NeverWhileBusy()
    {
        long allocated = 100 * MiB;
        var collections = 0;
        using var trim = new IdleMemoryTrim(new ManualTime(), () => allocated, () => collections++);

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
    public void AnIdleProcess_ChecksLessAndLessOften_AndActivityBringsTheSecondBack()
    {
        long allocated = 100 * MiB;
        var collections = 0;
        var time = new ManualTime();
        using var trim = new IdleMemoryTrim(time, () => allocated, () => collections++);
        Assert.Equal([TimeSpan.FromSeconds(1)], time.Periods); // created ticking every second

        for (var i = 0; i < 8; i++)
        {
            trim.Tick(); // nothing happens
        }

        Assert.Equal([1, 2, 4, 8, 16, 32, 64], time.Periods.Select(static p => p.TotalSeconds));
        Assert.Equal(IdleMemoryTrim.MaxPeriod, trim.Period);

        allocated += 20 * MiB; // a burst during the long wait: back to every second
        trim.Tick();
        Assert.Equal(TimeSpan.FromSeconds(1), trim.Period);
        Assert.Equal(0, collections);

        trim.Tick(); // the first quiet second after it: the trim, and the backing off starts again
        Assert.Equal(1, collections);
        Assert.Equal(TimeSpan.FromSeconds(2), trim.Period);
        Assert.Equal(TimeSpan.FromSeconds(2), time.Periods[^1]);
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
