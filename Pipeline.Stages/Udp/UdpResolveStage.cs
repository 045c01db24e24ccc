using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Resolve;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// Server: turns the datagram's target into an endpoint; a name that does not resolve, or a forbidden address, drops the
/// datagram. With an ACL (<c>--acl</c>), so do a client it refuses and a destination its outbound block list names.
/// A name goes to its first address that is allowed, of the outbound source address's family when there is one (<c>-b</c>).
/// </summary>
/// <remarks>
/// A lookup can take seconds (a name whose servers do not answer: the resolver's total timeout). Only the datagrams that
/// wait for one wait: the block takes any number at once, and the lookups themselves are what the stage's parallelism
/// (<c>pipeline.udp.max_parallelism</c>) bounds (datagrams to one name share its lookup and its slot). So a datagram to an address goes on at once, whatever lookups
/// are waiting; before, the block's parallelism counted the waiting datagrams, and as few as two datagrams to a
/// name that did not answer held every client's datagrams behind them. Datagrams waiting for a lookup are at most half
/// the stage's capacity (more are dropped, "resolve busy"), so the others always find room.
/// </remarks>
internal static class UdpResolveStage
{
    /// <param name="outboundFamily">
    /// The family the outbound sockets can reach when they are bound to a source address (<c>-b</c>); null: both.
    /// </param>
    public static TransformManyBlock<Datagram, Datagram> Create(
        StageOptions options, TaskScheduler loop, IDnsResolver resolver, ForbiddenAddresses forbidden, AccessControlList? acl = null,
        AddressFamily? outboundFamily = null)
    {
        var lookups = new LookupSlots(options.MaxParallelism);
        var maxWaiting = Math.Max(1, options.BoundedCapacity / 2);
        var waiting = 0;
        var blockOptions = BlockOptions.OnLoop(options, loop);
        blockOptions.MaxDegreeOfParallelism = DataflowBlockOptions.Unbounded; // the lookups are bounded instead, below

        return new(UdpStageGuard.Isolate("udp.resolve", async datagram =>
        {
            var target = datagram.Target;
            var address = target.Ip;
            if (acl is not null && (!acl.Admits(Core.Multiplexing.DualStack.Unmapped(datagram.Client).Address) || (address is null && acl.BlocksOutbound(target.Host!))))
            {
                UdpCounters.Drop(datagram, "refused by the ACL");
                return [];
            }

            if (address is null)
            {
                // The hosts file or the cache need no lookup, so no slot to wait for behind lookups that take long.
                if (!resolver.TryResolveAtOnce(target.Host!, out var addresses))
                {
                    if (Interlocked.Increment(ref waiting) > maxWaiting)
                    {
                        Interlocked.Decrement(ref waiting);
                        UdpCounters.Drop(datagram, "resolve busy");
                        return [];
                    }

                    try
                    {
                        addresses = await lookups.LookUpAsync(resolver, target.Host!, CancellationToken.None).ConfigureAwait(false);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref waiting);
                    }
                }

                if (addresses.Length == 0)
                {
                    UdpCounters.Drop(datagram, "resolve failed");
                    return [];
                }

                address = Choose(addresses, forbidden, acl, outboundFamily);
            }

            if (forbidden.Contains(address))
            {
                UdpCounters.Drop(datagram, "forbidden destination");
                PipelineTelemetry.ForbiddenDestinations.Add(1);
                return [];
            }

            if (acl?.BlocksOutbound(address) == true)
            {
                UdpCounters.Drop(datagram, "refused by the ACL");
                return [];
            }

            datagram.Resolved = new IPEndPoint(address, target.Port);
            return datagram.Alone;
        }), blockOptions);
    }

    /// <summary>
    /// The address a name's datagrams go to: the first that is neither forbidden nor on the outbound block list (as
    /// the TCP connect skips those and tries the next), of <paramref name="outboundFamily"/> when there is one; the
    /// first address when none is allowed (the checks after this then drop the datagram, and count it).
    /// </summary>
    private static IPAddress Choose(IPAddress[] addresses, ForbiddenAddresses forbidden, AccessControlList? acl, AddressFamily? outboundFamily)
    {
        IPAddress? otherFamily = null;
        foreach (var candidate in addresses)
        {
            if (forbidden.Contains(candidate) || acl?.BlocksOutbound(candidate) == true)
            {
                continue;
            }

            if (outboundFamily is { } family && Core.Multiplexing.DualStack.Unmapped(candidate).AddressFamily != family)
            {
                otherFamily ??= candidate;
                continue;
            }

            return candidate;
        }

        return otherFamily ?? addresses[0];
    }
}
