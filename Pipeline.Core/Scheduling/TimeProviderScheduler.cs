using System.Reactive.Concurrency;
using System.Reactive.Disposables;

namespace Shadowsocks.Pipeline.Core.Scheduling;

/// <summary>
/// An Rx scheduler on a <see cref="TimeProvider"/>: work due now goes to the thread pool, later work on one
/// one-shot timer each, absolute due times become relative ones. The relays' timers (a connection's idle timeout,
/// the caches' sweeps) run on it in the program.
/// <para>Why not Rx's <see cref="ThreadPoolScheduler"/>: every Rx <see cref="LocalScheduler"/> registers with Rx's
/// system-clock monitor, which then runs a timer every 30 seconds for as long as the process lives (to collect its
/// weak references), and a one-second timer while work is queued for an absolute time. Each of those ticks wakes
/// the thread pool of an otherwise idle proxy (a laptop's local sits idle most of the day): about 70 thread switches
/// per tick (bench/RESULTS.md, 2026-11-27). This scheduler has no timer of its own; a clock change moves nothing that
/// is already scheduled (a timer waits for its span of time, as the relays' timeouts mean).</para>
/// </summary>
internal sealed class TimeProviderScheduler(TimeProvider timeProvider) : IScheduler
{
    /// <summary>
    /// The longest wait a timer takes (about 49.7 days). Work due later runs then; the relays' timers re-check the time
    /// when they run (an idle timer re-arms for what is left, a cache sweep schedules the next), so that is early, not wrong.
    /// </summary>
    internal static readonly TimeSpan LongestWait = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    public DateTimeOffset Now => timeProvider.GetUtcNow();

    public IDisposable Schedule<TState>(TState state, Func<IScheduler, TState, IDisposable> action) =>
        Schedule(state, TimeSpan.Zero, action);

    public IDisposable Schedule<TState>(TState state, DateTimeOffset dueTime, Func<IScheduler, TState, IDisposable> action) =>
        Schedule(state, dueTime - Now, action);

    public IDisposable Schedule<TState>(TState state, TimeSpan dueTime, Func<IScheduler, TState, IDisposable> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var item = new Item<TState>(this, state, action);
        if (dueTime <= TimeSpan.Zero)
        {
            ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false);
        }
        else
        {
            var wait = dueTime < LongestWait ? dueTime : LongestWait;
            item.Timer = timeProvider.CreateTimer(static self => ((Item<TState>)self!).Execute(), item, wait, Timeout.InfiniteTimeSpan);
        }

        return item;
    }

    /// <summary>One piece of scheduled work: runs at most once, never after it was disposed.</summary>
    private sealed class Item<TState>(IScheduler scheduler, TState state, Func<IScheduler, TState, IDisposable> action) : IDisposable, IThreadPoolWorkItem
    {
        private const int Pending = 0;
        private const int Started = 1;
        private const int Disposed = 2;

        private int _phase;
        private IDisposable? _inner;

        /// <summary>The one-shot timer, for work due later (may be set after it fired).</summary>
        public ITimer? Timer { get; set; }

        public void Execute()
        {
            if (Interlocked.CompareExchange(ref _phase, Started, Pending) != Pending)
            {
                return;
            }

            Timer?.Dispose();
            var inner = action(scheduler, state);
            if (Interlocked.CompareExchange(ref _inner, inner, null) is not null)
            {
                // Disposed while it ran: what it scheduled in turn goes too.
                inner.Dispose();
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _phase, Disposed) == Disposed)
            {
                return;
            }

            Timer?.Dispose();

            // Rx's empty disposable stands in for the work's own, so a late one is disposed at once.
            Interlocked.Exchange(ref _inner, Disposable.Empty)?.Dispose();
        }
    }
}
