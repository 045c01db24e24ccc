using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Core.Scheduling;

public sealed class TimeProviderSchedulerTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public void WorkDueLater_RunsOnceWhenItsTimeComes_AndNotBefore()
    {
        var time = new ManualTimeProvider();
        var scheduler = new TimeProviderScheduler(time);
        var runs = 0;
        scheduler.Schedule(TimeSpan.FromSeconds(30), () => runs++);

        time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(0, runs);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, runs);
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(1, runs);
        Assert.Equal(0, time.Pending); // its timer is gone: nothing left to wake the process
    }

    [Fact]
    public void AnAbsoluteDueTime_IsMeasuredFromTheClocksNow()
    {
        var time = new ManualTimeProvider();
        var scheduler = new TimeProviderScheduler(time);
        Assert.Equal(time.GetUtcNow(), scheduler.Now);
        var runs = 0;
        scheduler.Schedule(scheduler.Now + TimeSpan.FromSeconds(10), () => runs++);

        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(0, runs);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, runs);
    }

    [Fact]
    public void WorkDueBeyondTheLongestTimer_IsAccepted_AndRunsAtThatLimit()
    {
        // A real timer refuses a due time over about 49.7 days (the system clock here would throw).
        var scheduler = new TimeProviderScheduler(TimeProvider.System);
        scheduler.Schedule(TimeSpan.FromDays(365), () => { }).Dispose();

        var time = new ManualTimeProvider();
        var runs = 0;
        new TimeProviderScheduler(time).Schedule(TimeSpan.FromDays(365), () => runs++);
        time.Advance(TimeProviderScheduler.LongestWait - TimeSpan.FromSeconds(1));
        Assert.Equal(0, runs);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, runs); // early: the callers re-check the time when they run
    }

    [Fact]
    public void WorkDisposedBeforeItsTime_NeverRuns_AndLeavesNoTimer()
    {
        var time = new ManualTimeProvider();
        var scheduler = new TimeProviderScheduler(time);
        var runs = 0;
        var pending = scheduler.Schedule(TimeSpan.FromSeconds(30), () => runs++);
        Assert.Equal(1, time.Pending);

        pending.Dispose();
        Assert.Equal(0, time.Pending);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(0, runs);
    }

    [Fact]
    public async Task WorkDueNow_RunsOnTheThreadPool()
    {
        var scheduler = new TimeProviderScheduler(new ManualTimeProvider()); // a clock that never moves: no timer is involved
        var ran = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        scheduler.Schedule(() => ran.TrySetResult(Thread.CurrentThread.IsThreadPoolThread));
        Assert.True(await ran.Task.WaitAsync(s_wait));

        var late = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        scheduler.Schedule(scheduler.Now - TimeSpan.FromSeconds(1), () => late.TrySetResult()); // already due
        await late.Task.WaitAsync(s_wait);
    }

    [Fact]
    public void DisposedWhileItRuns_WhatTheWorkReturnedIsDisposedToo()
    {
        var time = new ManualTimeProvider();
        var scheduler = new TimeProviderScheduler(time);
        var inner = new BooleanDisposable();
        IDisposable? pending = null;
        pending = scheduler.Schedule(0, TimeSpan.FromSeconds(1), (_, _) =>
        {
            pending!.Dispose(); // e.g. the owner tears down while its timer's work is under way
            return inner;
        });

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(inner.IsDisposed);

        var later = new BooleanDisposable();
        var finished = scheduler.Schedule(0, TimeSpan.FromSeconds(1), (_, _) => later);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(later.IsDisposed);
        finished.Dispose();
        Assert.True(later.IsDisposed);
    }

    [Fact]
    public void AnIdleTimerOnIt_FiresAfterTheTimeout_CountingFromTheLastActivity()
    {
        var time = new ManualTimeProvider();
        var idle = 0;
        using var timer = new IdleTimer(new TimeProviderScheduler(time), TimeSpan.FromSeconds(60), () => idle++);

        time.Advance(TimeSpan.FromSeconds(40));
        timer.Touch(); // activity: the next 60 s count from here
        time.Advance(TimeSpan.FromSeconds(20)); // the first due time: re-arms for the 40 s left
        Assert.Equal(0, idle);
        time.Advance(TimeSpan.FromSeconds(39));
        Assert.Equal(0, idle);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, idle);
        Assert.Equal(0, time.Pending);
    }
}
