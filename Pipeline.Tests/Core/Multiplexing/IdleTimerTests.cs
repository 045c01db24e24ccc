using Microsoft.Reactive.Testing;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class IdleTimerTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public void Fires_ExactlyAtTimeout_WhenNoActivity()
    {
        var scheduler = new TestScheduler();
        var fired = 0;
        using var timer = new IdleTimer(scheduler, s_timeout, () => fired++);

        scheduler.AdvanceBy(s_timeout.Ticks - 1);
        Assert.Equal(0, fired);
        scheduler.AdvanceBy(1);
        Assert.Equal(1, fired);
        scheduler.AdvanceBy(s_timeout.Ticks * 10);
        Assert.Equal(1, fired);
    }

    [Fact]
    public void Touch_PushesExpiryToLastActivityPlusTimeout()
    {
        var scheduler = new TestScheduler();
        var fired = 0;
        using var timer = new IdleTimer(scheduler, s_timeout, () => fired++);

        scheduler.AdvanceBy(TimeSpan.FromSeconds(50).Ticks);
        timer.Touch();
        scheduler.AdvanceBy(TimeSpan.FromSeconds(59).Ticks);
        Assert.Equal(0, fired);
        scheduler.AdvanceBy(TimeSpan.FromSeconds(1).Ticks);
        Assert.Equal(1, fired);
    }

    [Fact]
    public void Touch_KeepsBusyConnectionAliveIndefinitely()
    {
        var scheduler = new TestScheduler();
        var fired = 0;
        using var timer = new IdleTimer(scheduler, s_timeout, () => fired++);

        for (var i = 0; i < 100; i++)
        {
            scheduler.AdvanceBy(TimeSpan.FromSeconds(30).Ticks);
            timer.Touch();
        }

        Assert.Equal(0, fired);
    }

    [Fact]
    public void Dispose_PreventsFiring()
    {
        var scheduler = new TestScheduler();
        var fired = 0;
        var timer = new IdleTimer(scheduler, s_timeout, () => fired++);
        timer.Dispose();
        scheduler.AdvanceBy(s_timeout.Ticks * 2);
        Assert.Equal(0, fired);
    }
    [Fact]
    public void Progress_ThatMovesAtEveryWake_KeepsAConnectionWithoutReadsAlive()
    {
        // A relay waiting for a slow reader reads nothing (a send to it completes once in minutes), but the reader's
        // acknowledgements grow: that is no idle connection.
        var scheduler = new TestScheduler();
        var fired = 0;
        long acked = 0;
        using var timer = new IdleTimer(scheduler, s_timeout, () => fired++, () => acked);

        for (var i = 0; i < 20; i++)
        {
            acked += 1024;
            scheduler.AdvanceBy(TimeSpan.FromSeconds(30).Ticks);
        }

        Assert.Equal(0, fired);
    }

    [Fact]
    public void Progress_ThatStops_FiresWithinTwoTimeoutsOfTheLastMove()
    {
        var scheduler = new TestScheduler();
        var fired = 0;
        long acked = 0;
        using var timer = new IdleTimer(scheduler, s_timeout, () => fired++, () => acked);

        scheduler.AdvanceBy(TimeSpan.FromSeconds(10).Ticks);
        acked = 5000; // the peer takes bytes once, then nothing more
        scheduler.AdvanceBy((s_timeout * 2).Ticks - TimeSpan.FromSeconds(10).Ticks - 1);
        Assert.Equal(0, fired); // seen moving at the first wake (60 s)
        scheduler.AdvanceBy(1);
        Assert.Equal(1, fired); // and not since
    }

    [Fact]
    public void Progress_NothingWaiting_FiresExactlyAtTimeout()
    {
        // Null: nothing waits for a peer (an idle connection): no extra period.
        var scheduler = new TestScheduler();
        var fired = 0;
        var asked = 0;
        using var timer = new IdleTimer(scheduler, s_timeout, () => fired++, () =>
        {
            asked++;
            return null;
        });

        scheduler.AdvanceBy(s_timeout.Ticks - 1);
        Assert.Equal(0, fired);
        scheduler.AdvanceBy(1);
        Assert.Equal(1, fired);
        Assert.Equal(1, asked);
    }
}
