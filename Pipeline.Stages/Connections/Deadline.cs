namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// A cancellation token that fires after a timeout measured on an injected <see cref="TimeProvider"/>, or when
/// an outer token (the session's) fires. Dispose it when the guarded operation is over.
/// </summary>
internal sealed class Deadline : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly CancellationTokenRegistration _outer;

    public Deadline(TimeSpan timeout, TimeProvider timeProvider, CancellationToken outer)
    {
        _source = timeout > TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan
            ? new CancellationTokenSource(timeout, timeProvider)
            : new CancellationTokenSource();
        _outer = outer.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _source);
    }

    public CancellationToken Token => _source.Token;

    public void Dispose()
    {
        // Unregister first (waits for a running callback), so the callback never sees a disposed source.
        _outer.Dispose();
        _source.Dispose();
    }
}
