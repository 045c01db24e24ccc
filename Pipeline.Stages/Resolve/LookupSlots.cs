using System.Net;
using Shadowsocks.Pipeline.Core.Dns;

namespace Shadowsocks.Pipeline.Stages.Resolve;

/// <summary>
/// The lookups in flight of a stage that resolves names (the server's TCP and UDP resolve stages, the local's route
/// stage), at most its <c>max_parallelism</c>, and how many wait for one (the TCP stage counts them in its
/// <c>pipeline.stage.queue_length</c>, as the block's input queue). A lookup can take seconds (a name whose servers do
/// not answer); bounding the lookups rather than the block's connections or datagrams lets whatever needs none go on.
/// <para>
/// A slot is a name's, not a caller's: callers of a name that has a slot (or waits for one) join it, as the resolver
/// shares one lookup among them, and the slot is free again once the last of them has left (its answer, a failure, or
/// its own cancellation). Before, each caller took a slot of its own: a burst of connections to one slow name (a web
/// page's) took them all, and connections to other names waited behind what was one lookup. Names are told apart as
/// the resolver tells them (without a root dot, case-insensitively).
/// </para>
/// <para>
/// A slot lasts one lookup: once a caller has its answer, later callers of that name no longer join the slot but
/// take or queue for one of their own, behind the names already queued. Joined, they would start the next lookup in
/// it, and a steady stream of callers to a name whose lookups fail (not cached) kept the slot from every name queued.
/// </para>
/// </summary>
internal sealed class LookupSlots(int count)
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Lookup> _names = new(StringComparer.OrdinalIgnoreCase); // each name with callers, holding a slot or queued for one
    private readonly LinkedList<Lookup> _queued = new(); // names waiting for a slot, first come first served
    private int _free = count;
    private int _waiting;

    /// <summary>Callers waiting for a slot right now (not those whose name has one).</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Slots no name holds (tests: all of them once every caller has left).</summary>
    public int Free
    {
        get
        {
            lock (_gate)
            {
                return _free;
            }
        }
    }

    /// <summary>Names with callers, holding a slot or waiting for one (tests: none once every caller has left).</summary>
    public int Names
    {
        get
        {
            lock (_gate)
            {
                return _names.Count;
            }
        }
    }

    /// <summary>
    /// <paramref name="host"/>'s addresses: at once when the resolver knows them (the hosts file, the cache), with no
    /// slot to wait for behind lookups that take long; otherwise through <see cref="LookUpAsync"/>.
    /// </summary>
    public ValueTask<IPAddress[]> ResolveAsync(
        IDnsResolver resolver, string host, CancellationToken cancellationToken, TimeSpan maxWait = default, TimeProvider? timeProvider = null) =>
        resolver.TryResolveAtOnce(host, out var known) ? ValueTask.FromResult(known) : LookUpAsync(resolver, host, cancellationToken, maxWait, timeProvider);

    /// <summary>
    /// A lookup within its name's slot: joined at once when the name has one, otherwise waited for first; throws if
    /// <paramref name="cancellationToken"/> ends the wait or the lookup. With a <paramref name="timeProvider"/>, the wait
    /// for a slot lasts at most <paramref name="maxWait"/> (none when that is zero or less and the name has no slot):
    /// past it, <see cref="TimeoutException"/>. The lookup itself is bounded by the resolver's own timeouts.
    /// </summary>
    public async ValueTask<IPAddress[]> LookUpAsync(
        IDnsResolver resolver, string host, CancellationToken cancellationToken, TimeSpan maxWait = default, TimeProvider? timeProvider = null)
    {
        var lookup = Enter(DnsMessage.WithoutRootDot(host));
        var answered = false;
        try
        {
            if (!lookup.Slot.Task.IsCompleted)
            {
                Interlocked.Increment(ref _waiting);
                try
                {
                    await WaitAsync(lookup.Slot.Task, maxWait, timeProvider, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    Interlocked.Decrement(ref _waiting);
                }
            }

            var addresses = await resolver.ResolveAsync(host, cancellationToken).ConfigureAwait(false);
            answered = true;
            return addresses;
        }
        finally
        {
            Leave(lookup, answered);
        }
    }

    /// <summary>
    /// One more caller of <paramref name="name"/>: its lookup joined, or a new one (also when the name's has answered),
    /// given a free slot or queued for one.
    /// </summary>
    private Lookup Enter(string name)
    {
        lock (_gate)
        {
            if (!_names.TryGetValue(name, out var lookup) || lookup.Answered)
            {
                lookup = new Lookup(name);
                _names[name] = lookup; // an answered one keeps its slot until its last caller has left
                if (_free > 0)
                {
                    _free--;
                    lookup.Slot.SetResult();
                }
                else
                {
                    lookup.Queued = _queued.AddLast(lookup);
                }
            }

            lookup.Callers++;
            return lookup;
        }
    }

    /// <summary>
    /// A caller is done (<paramref name="answered"/>: with its answer); the last of a name's ends its lookup here, and its
    /// slot goes to the first name queued (or is free).
    /// </summary>
    private void Leave(Lookup lookup, bool answered)
    {
        lock (_gate)
        {
            lookup.Answered |= answered;
            if (--lookup.Callers > 0)
            {
                return;
            }

            if (_names.TryGetValue(lookup.Name, out var current) && current == lookup)
            {
                _names.Remove(lookup.Name); // not a later lookup of the name, which has its own slot or place
            }

            if (lookup.Queued is { } queued)
            {
                _queued.Remove(queued); // every caller gave up waiting: it never had a slot
                lookup.Queued = null;
                return;
            }

            if (_queued.First is { } next)
            {
                _queued.RemoveFirst();
                next.Value.Queued = null;
                next.Value.Slot.SetResult(); // its callers go on asynchronously, outside the lock
            }
            else
            {
                _free++;
            }
        }
    }

    private static async ValueTask WaitAsync(Task slot, TimeSpan maxWait, TimeProvider? timeProvider, CancellationToken cancellationToken)
    {
        if (timeProvider is null)
        {
            await slot.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        if (maxWait <= TimeSpan.Zero)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException();
        }

        await slot.WaitAsync(maxWait, timeProvider, cancellationToken).ConfigureAwait(false); // TimeoutException past it
    }

    /// <summary>A name's callers and its slot (set once it has one; until then, its place in the queue).</summary>
    private sealed class Lookup(string name)
    {
        public string Name { get; } = name;

        public TaskCompletionSource Slot { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Callers { get; set; }

        public LinkedListNode<Lookup>? Queued { get; set; }

        /// <summary>A caller has had its answer: the name's later callers take a slot of their own.</summary>
        public bool Answered { get; set; }
    }
}
