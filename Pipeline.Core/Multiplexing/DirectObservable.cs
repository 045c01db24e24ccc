namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// An observable whose <see cref="Subscribe"/> calls straight into a function, for the multiplexer's event sources
/// (a listener's accepts, a UDP socket's readiness). Rx's <c>Observable.Create</c> runs each subscription through its
/// <c>Producer</c>, which, on a thread that is not already in a trampoline, queues it on Rx's
/// <c>CurrentThreadScheduler</c>. Creating that scheduler (a <c>LocalScheduler</c>) starts Rx's system-clock monitor:
/// a 30-second timer for the rest of the process's life, whose every tick wakes the thread pool of an idle proxy.
/// The relays subscribe once per listener and socket with plain observers, so the trampoline buys them nothing.
/// The function must keep Rx's contract itself: calls to the observer one at a time, nothing after
/// <see cref="IObserver{T}.OnCompleted"/> or <see cref="IObserver{T}.OnError"/>.
/// </summary>
internal sealed class DirectObservable<T>(Func<IObserver<T>, IDisposable> subscribe) : IObservable<T>
{
    public IDisposable Subscribe(IObserver<T> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        return subscribe(observer);
    }
}
