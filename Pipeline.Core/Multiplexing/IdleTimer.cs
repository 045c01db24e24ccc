using System.Reactive.Concurrency;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// Fires <paramref name="onIdle"/> once when no activity was recorded for <paramref name="timeout"/>, measured on
/// an injected scheduler (virtual time in tests). Recording activity costs one field write; the timer re-arms
/// itself for the remaining time when it wakes early, instead of being reset on every chunk.
/// </summary>
internal sealed class IdleTimer : IDisposable
{
    private readonly IScheduler _scheduler;
    private readonly TimeSpan _timeout;
    private readonly Action _onIdle;
    private readonly object _gate = new();
    private long _lastActivityTicks;
    private IDisposable? _pending;
    private bool _disposed;

    public IdleTimer(IScheduler scheduler, TimeSpan timeout, Action onIdle)
    {
        _scheduler = scheduler;
        _timeout = timeout;
        _onIdle = onIdle;
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
