using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// A lookup in flight and how many wait for it: concurrent lookups of one name share it, and when every one that waits
/// has left (each its own cancellation: a client that reset), nothing wants its answer and it is ended
/// (<see cref="Abandoned"/>), its queries with it. Otherwise it ran on for up to the resolver's total timeout after
/// its waiters, and their lookup slots, had gone: more lookups in flight than the slots said. One that another still
/// waits for goes on.
/// </summary>
internal sealed class SharedLookup
{
    private readonly CancellationTokenSource _abandoned = new(); // no timer, no wait handle: nothing to dispose
    private readonly Lazy<Task<IPAddress[]>> _task;
    private int _waiters = 1; // the one that starts it

    /// <param name="run">The lookup, started by the first to wait for it, given this to end with <see cref="Abandoned"/>.</param>
    public SharedLookup(Func<SharedLookup, Task<IPAddress[]>> run) => _task = new(() => run(this));

    /// <summary>The lookup (started by the first call).</summary>
    public Task<IPAddress[]> Task => _task.Value;

    /// <summary>Cancelled once the last that waited has left before the lookup ended.</summary>
    public CancellationToken Abandoned => _abandoned.Token;

    /// <summary>One more waits for it; false when every one before has left (it is ending: start another).</summary>
    public bool TryJoin()
    {
        var waiters = Volatile.Read(ref _waiters);
        while (waiters > 0)
        {
            var seen = Interlocked.CompareExchange(ref _waiters, waiters + 1, waiters);
            if (seen == waiters)
            {
                return true;
            }

            waiters = seen;
        }

        return false;
    }

    /// <summary>One that waited no longer does (it has its answer, or gave up); the last to leave an unfinished lookup ends it.</summary>
    public void Leave()
    {
        if (Interlocked.Decrement(ref _waiters) == 0 && !_task.Value.IsCompleted)
        {
            _abandoned.Cancel();
        }
    }
}
