using System.Collections.Concurrent;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// Sockets to close with a reset once their peer has what was sent to it. A reset (<c>SO_LINGER</c> 0) discards the
/// send queue, so closing at once would cut off the bytes a broken connection's other end sent before it broke, and a
/// stream already complete (its FIN queued behind them). A socket with bytes still queued (<c>SIOCOUTQ</c>) is kept
/// open here, asked again once per <see cref="Period"/> while there are any (an idle process is not woken), and
/// closed when the queue is empty, when its peer has gone (a pending error, or the connection in state CLOSE: a reset
/// leaves the queue's count as it was, and its error fades once something reads it), or when the queue has not shrunk for the
/// connection's idle timeout (a peer that stopped reading is not waited for longer than one that stopped sending).
/// At most <see cref="Capacity"/> wait at once; beyond that a socket is closed at once, as before.
/// </summary>
internal sealed class ResetAfterDelivery
{
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(100);

    public const int Capacity = 4096;

    private readonly ConcurrentDictionary<Socket, Waiting> _waiting = new();
    private readonly Lock _gate = new();
    private readonly TimeProvider _timeProvider;
    private ITimer? _next;

    public ResetAfterDelivery(TimeProvider timeProvider) => _timeProvider = timeProvider;

    /// <summary>The process's, on the system clock (as <see cref="HalfOpenWatch.Shared"/>, it serves every relay).</summary>
    public static ResetAfterDelivery Shared { get; } = new(TimeProvider.System);

    /// <summary>Sockets waiting now (for tests).</summary>
    internal int Count => _waiting.Count;

    /// <summary>
    /// Closes <paramref name="socket"/>, already set to reset on close, now or once its peer has what is queued
    /// toward it; <paramref name="patience"/>: how long the queue may stay the same before the reset goes anyway.
    /// </summary>
    public void Close(Socket socket, TimeSpan patience)
    {
        if (NothingToWaitFor(socket, out var queued) || patience <= TimeSpan.Zero || _waiting.Count >= Capacity)
        {
            socket.Dispose();
            return;
        }

        _waiting[socket] = new Waiting(queued, _timeProvider.GetTimestamp(), patience);
        lock (_gate)
        {
            _next ??= SweepLater();
        }
    }

    private void Sweep()
    {
        var now = _timeProvider.GetTimestamp();
        foreach (var (socket, waiting) in _waiting)
        {
            if (NothingToWaitFor(socket, out var queued))
            {
                Release(socket);
            }
            else if (queued < waiting.Queued)
            {
                _waiting[socket] = waiting with { Queued = queued, Since = now };
            }
            else if (_timeProvider.GetElapsedTime(waiting.Since, now) >= waiting.Patience)
            {
                Release(socket);
            }
        }

        lock (_gate)
        {
            // Stopped only under the lock that Close starts it under, after the last socket went: nothing is missed.
            _next?.Dispose();
            _next = _waiting.IsEmpty ? null : SweepLater();
        }
    }

    /// <summary>
    /// Nothing queued toward the peer (<paramref name="queued"/>), or a peer that will take nothing more: gone with a
    /// pending error, or the connection in state CLOSE (a reset leaves the queue's count as it was, and its error fades
    /// once something reads it).
    /// </summary>
    private static bool NothingToWaitFor(Socket socket, out int queued)
    {
        queued = SocketIo.UnsentBytes(socket);
        return queued <= 0 || SocketIo.PendingError(socket) != 0 || SocketIo.IsClosedTcp(socket);
    }

    private void Release(Socket socket)
    {
        if (_waiting.TryRemove(socket, out _))
        {
            socket.Dispose();
        }
    }

    private ITimer SweepLater() =>
        _timeProvider.CreateTimer(static state => ((ResetAfterDelivery)state!).Sweep(), this, Period, Timeout.InfiniteTimeSpan);

    /// <summary>What was queued when last it shrank (or the wait began), and when.</summary>
    private readonly record struct Waiting(int Queued, long Since, TimeSpan Patience);
}
