using System.Reactive.Concurrency;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// Fires <paramref name="onIdle"/> once when no activity was recorded for <paramref name="timeout"/>, measured on
/// an injected scheduler (virtual time in tests). Recording activity costs one field write; the timer re-arms
/// itself for the remaining time when it wakes early, instead of being reset on every chunk.
/// <para>Activity the owner cannot record as it happens is asked for when the timer wakes: <c>progress</c>, a counter
/// that moves when it happened (a TCP relay: the bytes its peers have acknowledged, while it waits for a slow reader
/// to take what it holds), or null when there is nothing to ask (nothing waits: no system call). A value other than
/// the one seen at the last wake counts as activity at this wake; so does the first one seen, as when it moved is not
/// known. Activity seen that way is late by up to one timeout: a connection that moves nothing at all ends between
/// one and two timeouts after its last recorded activity.</para>
/// </summary>
internal sealed class IdleTimer : IDisposable
{
    private readonly IScheduler _scheduler;
    private readonly TimeSpan _timeout;
    private readonly Action _onIdle;
    private readonly Func<long?>? _progress;
    private readonly object _gate = new();
    private long _lastActivityTicks;
    private IDisposable? _pending;
    private bool _disposed;
    private long? _lastProgress; // only the wakes (one at a time) read and write it

    public IdleTimer(IScheduler scheduler, TimeSpan timeout, Action onIdle, Func<long?>? progress = null)
    {
        _scheduler = scheduler;
        _timeout = timeout;
        _onIdle = onIdle;
        _progress = progress;
        _lastActivityTicks = scheduler.Now.UtcTicks;
        if (timeout > TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            Arm(timeout);
        }
    }

    /// <summary>Records activity now.</summary>
    public void Touch() => Volatile.Write(ref _lastActivityTicks, _scheduler.Now.UtcTicks);

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _pending?.Dispose();
            _pending = null;
        }
    }

    private void Arm(TimeSpan due)
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _pending = _scheduler.Schedule(due, Wake);
            }
        }
    }

    private void Wake()
    {
        if (_progress?.Invoke() is { } progress && progress != _lastProgress)
        {
            _lastProgress = progress;
            Touch();
        }

        var idleFor = TimeSpan.FromTicks(_scheduler.Now.UtcTicks - Volatile.Read(ref _lastActivityTicks));
        if (idleFor >= _timeout)
        {
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                _disposed = true;
            }

            _onIdle();
            return;
        }

        Arm(_timeout - idleFor);
    }
}
