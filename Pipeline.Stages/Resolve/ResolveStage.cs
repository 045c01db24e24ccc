using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Resolve;

/// <summary>
/// Shared, connection-level (server): the destination's addresses; IP literals pass straight through. A host name the
/// ACL's outbound block list names (<c>--acl</c>) is refused before it is looked up.
/// <para>
/// The stage's parallelism (<c>pipeline.resolve.max_parallelism</c>) bounds the lookups in flight, not the
/// connections in the block: a lookup can take seconds (a name whose servers do not answer waits out the resolver's
/// total timeout), and when the block's parallelism counted the connections, 64 such lookups held every other
/// connection behind them, those to IP addresses too. The block's capacity still bounds what it holds. Connections to
/// one name share its lookup and its slot (<see cref="LookupSlots"/>): a burst of them to one slow name takes one slot,
/// not every slot.
/// </para>
/// <para>
/// A connection waits for a lookup slot at most <c>waitLimit</c> (the server's connect timeout) from when its header
/// was read, the time it waited before the stage (behind a full block) included; past it, it fails as a failed lookup
/// does (and is counted as one). Without it, while the name servers did not answer, the connections waiting for a
/// slot piled up with their sockets and buffers, each for as long as every lookup ahead of it took.
/// </para>
/// <para>
/// While a connection waits for a slot or for its lookup, its client's socket is in <c>clientWatch</c> (by default
/// <see cref="HalfOpenWatch.Shared"/>), as during the connect: a client that resets meanwhile (or whose socket fails)
/// ends the connection within a sweep, and frees its slot, rather than when the lookup ends (up to the slot wait and
/// the resolver's 8 s); the lookup ends with it, unless another waits for the same name (which keeps the lookup and its
/// slot; so the lookups in flight stay within the slots). A client that only half-closes is still served. A name the resolver knows at once (the hosts
/// file, the cache) and an IP address are never watched: they wait for nothing.
/// </para>
/// </summary>
internal static class ResolveStage
{
    public const string Name = "resolve";

    /// <param name="lookups">The slots for lookups in flight (the relay counts who waits for one); by default, the stage's parallelism's.</param>
    /// <param name="waitLimit">How long a connection may wait for a slot, from <see cref="TcpSession.HeaderReadAt"/> (with <paramref name="timeProvider"/>; unbounded without one).</param>
    /// <param name="timeProvider">The clock of <see cref="TcpSession.HeaderReadAt"/>.</param>
    /// <param name="clientWatch">Where a client is watched for a reset while its connection waits for a lookup (by default <see cref="HalfOpenWatch.Shared"/>).</param>
    public static TransformBlock<TcpSession, TcpSession> Create(
        StageOptions options, IDnsResolver resolver, AccessControlList? acl = null, LookupSlots? lookups = null, TimeSpan waitLimit = default,
        TimeProvider? timeProvider = null, HalfOpenWatch? clientWatch = null)
    {
        var watch = clientWatch ?? HalfOpenWatch.Shared;
        lookups ??= new LookupSlots(options.MaxParallelism);
        var blockOptions = BlockOptions.Shared(options);
        blockOptions.MaxDegreeOfParallelism = DataflowBlockOptions.Unbounded; // the lookups are bounded instead, below
        return new(StageGuard.Isolate(Name, async session =>
        {
            if (session.Destination.Host is { } name && acl?.BlocksOutbound(name) == true)
            {
                session.ResolvedAddresses = [];
                DestinationFailure.Count(DestinationFailure.Forbidden);
                session.Fail($"{name} is refused by the ACL (outbound_block_list)");
                return session;
            }

            if (session.Destination.Ip is { } ip)
            {
                session.ResolvedAddresses = [ip];
                return session;
            }

            using var span = StageActivity.Start(Name, session, options);
            span?.SetTag("dns.question.name", session.Destination.Host);
            string? why;
            var host = session.Destination.Host!;
            var watched = false;
            try
            {
                if (resolver.TryResolveAtOnce(host, out var known))
                {
                    session.ResolvedAddresses = known; // nothing to wait for, no watch
                }
                else
                {
                    // Nothing reads the client's socket until the connect is done: a reset there is seen by the watch.
                    watch.Watch(session, session.Client);
                    watched = true;
                    var maxWait = timeProvider is null ? default : waitLimit - timeProvider.GetElapsedTime(session.HeaderReadAt);
                    session.ResolvedAddresses = await lookups.LookUpAsync(resolver, host, session.Cancellation.Token, maxWait, timeProvider).ConfigureAwait(false);
                }

                why = session.ResolvedAddresses.Length == 0 ? resolver.FailureReason(host) : null;
            }
            catch (TimeoutException)
            {
                session.ResolvedAddresses = [];
                why = $"no lookup slot within {waitLimit.TotalSeconds:0.#} s of the header ({options.MaxParallelism} lookups in flight, {lookups.Waiting} waiting)";
            }
            catch (OperationCanceledException)
            {
                session.ResolvedAddresses = [];
                why = "the connection ended first";
            }
            finally
            {
                if (watched)
                {
                    watch.Forget(session);
                }
            }

            if (session.ResolvedAddresses.Length == 0)
            {
                // One line says which name and why (ss-server's -v says it in three: each family's, then the name).
                var reason = $"cannot resolve {session.Destination.Host}: {why ?? "no address"}";
                if (!session.Cancellation.IsCancellationRequested)
                {
                    DestinationFailure.Count(DestinationFailure.LookupFailed); // not a client that went away first
                }

                span.Fail(reason);
                session.Fail(reason);
            }

            return session;
        }), blockOptions);
    }
}
