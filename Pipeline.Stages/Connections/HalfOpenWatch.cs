using System.Collections.Concurrent;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// Connections that one side has half-closed. The relay reads that side's socket no more (it stays readable at its
/// end of stream), so a reset arriving there later (a client that half-closed, then aborted) would go unseen while
/// the other direction waits for data, until the idle timeout. Each such socket is asked for a pending error once
/// per <see cref="Period"/>, only while there are any (an idle process is not woken); a reset tears its connection
/// down and is passed on as a reset (<see cref="TcpSession.Broken"/>). A sweep instead of a readiness wait per
/// half-close: short connections half-close on every request and end microseconds later, and a wait armed for each
/// cost 2–5 µs of CPU per request in each process (bench/RESULTS.md, thirteenth session).
/// The same holds for a client while the server looks its destination up (<see cref="Resolve.ResolveStage"/>: the wait
/// for a lookup slot and the lookup) and while the connect to it is under way (<see cref="Connect.ConnectStage.ToDestination"/>):
/// nothing reads its socket then either, and a client that resets ends the lookup or connect instead of leaving it to its timeout.
/// </summary>
internal sealed class HalfOpenWatch
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<TcpSession, Socket> _watched = new();
    private readonly Lock _gate = new();
    private readonly TimeProvider _timeProvider;
    private ITimer? _next;

    public HalfOpenWatch(TimeProvider timeProvider) => _timeProvider = timeProvider;

    /// <summary>The process's watch, on the system clock (as the readiness loop, it serves every relay).</summary>
    public static HalfOpenWatch Shared { get; } = new(TimeProvider.System);

    /// <summary>Connections watched now (for tests).</summary>
    internal int Count => _watched.Count;

    /// <summary>Watches <paramref name="ended"/>, the socket <paramref name="session"/> has read to its end.</summary>
    public void Watch(TcpSession session, Socket ended)
    {
        _watched[session] = ended;
        lock (_gate)
        {
            _next ??= SweepLater();
        }
    }

    /// <summary>The connection has ended: nothing to watch (a no-op for one never watched).</summary>
    public void Forget(TcpSession session) => _watched.TryRemove(session, out _);

    private void Sweep()
    {
        foreach (var (session, socket) in _watched)
        {
            var error = SocketIo.PendingError(socket); // -1: closed meanwhile, its connection is ending
            if (error != 0 && _watched.TryRemove(session, out _) && error > 0)
            {
                session.Broken(socket, BrokenBy.Reset);
            }
        }

        lock (_gate)
        {
            // Stopped only under the lock that Watch starts it under, after the last entry went: nothing is missed.
            _next?.Dispose();
            _next = _watched.IsEmpty ? null : SweepLater();
        }
    }

    private ITimer SweepLater() =>
        _timeProvider.CreateTimer(static state => ((HalfOpenWatch)state!).Sweep(), this, Period, Timeout.InfiniteTimeSpan);
}
