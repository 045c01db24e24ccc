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
}
