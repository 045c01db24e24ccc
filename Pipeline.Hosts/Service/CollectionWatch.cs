namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// Calls back after every garbage collection, on the finalizer thread, until disposed. A collection happens only once
/// the process has allocated a generation-0 budget (about 16 MiB here), so this is a sign of activity that costs an
/// idle process nothing: no timer, no wake-up. It works with a sentinel object that nothing references: each
/// collection finds it dead and runs its finalizer, which calls back and leaves a fresh sentinel for the next one.
/// (A sentinel re-registered for finalization instead would be promoted, and then seen only by full collections.)
/// </summary>
internal sealed class CollectionWatch : IDisposable
{
    private readonly Action _callback;
    private volatile bool _disposed;

    public CollectionWatch(Action callback)
    {
        _callback = callback;
        _ = new Sentinel(this);
    }

    public void Dispose() => _disposed = true;

    private sealed class Sentinel(CollectionWatch watch)
    {
        ~Sentinel()
        {
            if (watch._disposed)
            {
                return;
            }

            try
            {
                watch._callback();
            }
            finally
            {
                _ = new Sentinel(watch);
            }
        }
    }
}
