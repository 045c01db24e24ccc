using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

/// <summary>
/// The multiplexer's observables (accepts, UDP readiness) subscribe without Rx's trampoline: Rx's
/// <c>Observable.Create</c> runs a subscription inside <see cref="CurrentThreadScheduler"/>, whose creation starts Rx's
/// 30-second system-clock timer for the life of the process. Inside that trampoline
/// <see cref="CurrentThreadScheduler.IsScheduleRequired"/> is false.
/// </summary>
public sealed class DirectObservableTests
{
    [Fact]
    public void Subscribe_CallsTheFunction_OnTheCallingThread_OutsideRxsTrampoline()
    {
        bool? scheduleRequired = null;
        var thread = 0;
        var subscription = Disposable.Empty;
        var observable = new DirectObservable<int>(observer =>
        {
            scheduleRequired = CurrentThreadScheduler.IsScheduleRequired;
            thread = Environment.CurrentManagedThreadId;
            observer.OnNext(7);
            return subscription;
        });
        var seen = new List<int>();

        var returned = observable.Subscribe(seen.Add);

        Assert.Equal([7], seen);
        Assert.Same(subscription, returned);
        Assert.Equal(Environment.CurrentManagedThreadId, thread);
        Assert.True(scheduleRequired, "the subscription ran inside Rx's CurrentThreadScheduler trampoline");
    }

    [Fact]
    public void RxsOwnCreate_RunsInsideTheTrampoline_WhichIsWhatTheOtherTestRulesOut()
    {
        bool? scheduleRequired = null;
        using var _ = Observable.Create<int>(observer =>
        {
            scheduleRequired = CurrentThreadScheduler.IsScheduleRequired;
            return Disposable.Empty;
        }).Subscribe(_ => { });

        Assert.False(scheduleRequired);
    }
}
