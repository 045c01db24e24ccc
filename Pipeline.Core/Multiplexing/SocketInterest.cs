using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// A TCP socket's pending waits for readiness on the process's readiness loop (<see cref="SocketReadiness"/>): at
/// most one for reading and one for writing. The socket is in the loop's epoll set only as a one-shot,
/// level-triggered interest in what is awaited right now, re-armed for each wait: nothing wakes the loop for a
/// socket nobody waits on. (.NET's socket engine registers every socket for reading and writing, edge-triggered, for
/// its whole life, so a bulk transfer woke its epoll thread about once per 128 KiB chunk sent or received although
/// nothing waited: bench/RESULTS.md, 2026-11-26, fourth session.) Level-triggered arming reports at once what already
/// holds, so readiness that came between a call that would block and the arming is not lost.
/// </summary>
internal sealed class SocketInterest
{
    private readonly Lock _gate = new();
    private readonly EventLoop _loop;
    private readonly SafeHandle _handle;
    private readonly Action<ulong, uint> _onReady;
    private ReadinessWaiter? _read;
    private ReadinessWaiter? _write;
    private ulong _armed;
    private bool _added;

    public SocketInterest(EventLoop loop, Socket socket)
    {
        _loop = loop;
        _handle = socket.SafeHandle;
        _onReady = OnReady;
    }

    /// <summary>A wait is pending or an interest is armed on the loop (for tests: nothing may be left behind).</summary>
    internal bool HasPendingWait
    {
        get
        {
            lock (_gate)
            {
                return _armed != 0 || _read is not null || _write is not null;
            }
        }
    }

    /// <summary>
    /// Completes when the socket is readable (<paramref name="write"/> false: data, end of stream or an error) or
    /// writable (true: room to send, a finished connect, or an error). The token must be cancelled before the socket
    /// is closed while a wait may be pending (a closed descriptor leaves the epoll set and would never report).
    /// </summary>
    public Task WaitAsync(bool write, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        var waiter = new ReadinessWaiter(this);
        if (cancellationToken.CanBeCanceled)
        {
            // Registered before the interest is armed, so whoever completes the wait (the loop, on readiness that
            // may already hold) finds the registration to remove: a long connection's token must not collect one
            // registration per wait.
            waiter.Registration = cancellationToken.UnsafeRegister(
                static (state, token) => ((ReadinessWaiter)state!).Interest.Cancel((ReadinessWaiter)state!, token), waiter);
        }

        lock (_gate)
        {
            if (waiter.Task.IsCompleted)
            {
                return waiter.Task; // cancelled while registering
            }

            ref var slot = ref write ? ref _write : ref _read;
            if (slot is not null)
            {
                waiter.Registration.Unregister();
                throw new InvalidOperationException($"a {(write ? "write" : "read")} wait is already pending on this socket");
            }

            slot = waiter;
            try
            {
                Arm();
            }
            catch
            {
                slot = null;
                waiter.Registration.Unregister();
                throw;
            }
        }

        return waiter.Task;
    }

    private void Cancel(ReadinessWaiter waiter, CancellationToken token)
    {
        lock (_gate)
        {
            if (_read == waiter)
            {
                _read = null;
            }
            else if (_write == waiter)
            {
                _write = null;
            }

            if (_read is null && _write is null && _armed != 0)
            {
                // The one-shot interest may still fire; its id is forgotten, so it is ignored (and then off).
                _loop.Forget(_armed);
                _armed = 0;
            }
        }

        waiter.TrySetCanceled(token);
    }

    /// <summary>On the loop's thread: completes the waits the events answer and re-arms for the rest.</summary>
    private void OnReady(ulong id, uint events)
    {
        ReadinessWaiter? read = null, write = null;
        lock (_gate)
        {
            if (id != _armed)
            {
                return; // replaced by a later arming, or given up
            }

            _loop.Forget(id);
            _armed = 0;
            if ((events & (Epoll.In | Epoll.Error | Epoll.HangUp | Epoll.ReadHangUp)) != 0)
            {
                (read, _read) = (_read, null);
            }

            if ((events & (Epoll.Out | Epoll.Error | Epoll.HangUp)) != 0)
            {
                (write, _write) = (_write, null);
            }

            if (_read is not null || _write is not null)
            {
                try
                {
                    Arm();
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException)
                {
                    // The socket is closing: let the remaining wait go; its next call sees the error.
                    read ??= _read;
                    write ??= _write;
                    _read = _write = null;
                }
            }
        }

        read?.Complete();
        write?.Complete();
    }

    /// <summary>Under the lock: one-shot interest in what is awaited now, under a new id.</summary>
    private void Arm()
    {
        var events = (_read is null ? 0u : Epoll.In) | (_write is null ? 0u : Epoll.Out);
        if (_armed != 0)
        {
            _loop.Forget(_armed);
            _armed = 0;
        }

        _armed = _loop.ArmOnce(_handle, events, add: !_added, _onReady);
        _added = true;
    }
}
