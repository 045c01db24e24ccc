using System.Net;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Resolve;

/// <summary>
/// The lookups in flight of a stage that resolves names (the server's TCP and UDP resolve stages, the local's route
/// stage), at most its <c>max_parallelism</c>, and how many wait for one (the TCP stage counts them in its
/// <c>pipeline.stage.queue_length</c>, as the block's input queue). A lookup can take seconds (a name whose servers do
/// not answer); bounding the lookups rather than the block's connections or datagrams lets whatever needs none go on.
/// </summary>
internal sealed class LookupSlots(int count)
{
    private readonly SemaphoreSlim _slots = new(count);
    private int _waiting;

    /// <summary>Waiting for a slot right now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>
    /// <paramref name="host"/>'s addresses: at once when the resolver knows them (the hosts file, the cache), with no
    /// slot to wait for behind lookups that take long; otherwise through <see cref="LookUpAsync"/>.
    /// </summary>
    public ValueTask<IPAddress[]> ResolveAsync(
        IDnsResolver resolver, string host, CancellationToken cancellationToken, TimeSpan maxWait = default, TimeProvider? timeProvider = null) =>
        resolver.TryResolveAtOnce(host, out var known) ? ValueTask.FromResult(known) : LookUpAsync(resolver, host, cancellationToken, maxWait, timeProvider);

    /// <summary>
    /// A lookup within a slot (waited for first); throws if <paramref name="cancellationToken"/> ends the wait or the
    /// lookup. With a <paramref name="timeProvider"/>, the wait for a slot lasts at most <paramref name="maxWait"/> (none
    /// when that is zero or less and no slot is free): past it, <see cref="TimeoutException"/>. The lookup itself is
    /// bounded by the resolver's own timeouts.
    /// </summary>
    public async ValueTask<IPAddress[]> LookUpAsync(
        IDnsResolver resolver, string host, CancellationToken cancellationToken, TimeSpan maxWait = default, TimeProvider? timeProvider = null)
    {
        if (!_slots.Wait(0))
        {
            Interlocked.Increment(ref _waiting);
            try
            {
                if (timeProvider is null)
                {
                    await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await WaitWithinAsync(maxWait, timeProvider, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
        }

        try
        {
            return await resolver.ResolveAsync(host, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    private async ValueTask WaitWithinAsync(TimeSpan maxWait, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        if (maxWait <= TimeSpan.Zero)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException();
        }

        using var deadline = new Deadline(maxWait, timeProvider, cancellationToken);
        try
        {
            await _slots.WaitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException();
        }
    }
}
