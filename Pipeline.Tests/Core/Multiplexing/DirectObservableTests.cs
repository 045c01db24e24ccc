using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

/// <summary>
/// The multiplexer's observables subscribe without Rx's trampoline: Rx's <c>Observable.Create</c> runs a subscription
/// inside <see cref="CurrentThreadScheduler"/>, whose creation starts Rx's 30-second system-clock timer for the life of
/// the process. Inside that trampoline <see cref="CurrentThreadScheduler.IsScheduleRequired"/> is false.
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

    [Fact]
    public void Accepts_DeliverOutsideRxsTrampoline()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!); // waiting in the backlog: accepted within Subscribe, on this thread
        bool? scheduleRequired = null;
        Socket? accepted = null;

        using (SocketAcceptor.Accepts(listener).Subscribe(socket =>
        {
            scheduleRequired ??= CurrentThreadScheduler.IsScheduleRequired;
            accepted ??= socket;
        }))
        {
            Assert.NotNull(accepted);
            Assert.True(scheduleRequired, "the accept was delivered inside Rx's CurrentThreadScheduler trampoline");
        }

        accepted.Dispose();
    }
}
