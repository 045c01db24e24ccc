namespace Shadowsocks.Pipeline.Stages.Resolve;

/// <summary>
/// The resolve stage's lookups in flight, at most <c>pipeline.resolve.max_parallelism</c> of them, and how many
/// connections wait for one (they count in the stage's <c>pipeline.stage.queue_length</c>, as the block's input queue does).
/// </summary>
internal sealed class LookupSlots(int count)
{
    private readonly SemaphoreSlim _slots = new(count);
    private int _waiting;

    /// <summary>Connections waiting for a slot right now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Takes a slot (give it back with <see cref="Leave"/>); throws if <paramref name="cancellationToken"/> ends the wait.</summary>
    public async Task EnterAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    public void Leave() => _slots.Release();
}
