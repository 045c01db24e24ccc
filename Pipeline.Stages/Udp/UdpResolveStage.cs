using System.Net;
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
/// </summary>
/// <remarks>
/// A lookup can take seconds (a name whose servers do not answer: the resolver's total timeout). Only the datagrams that
/// wait for one wait: the block takes any number at once, and the lookups themselves are what the stage's parallelism
/// (<c>pipeline.udp.max_parallelism</c>) bounds. So a datagram to an address goes on at once, whatever lookups
/// are waiting; before, the block's parallelism counted the waiting datagrams, and as few as two datagrams to a
/// name that did not answer held every client's datagrams behind them. Datagrams waiting for a lookup are at most half
/// the stage's capacity (more are dropped, "resolve busy"), so the others always find room.
/// </remarks>
internal static class UdpResolveStage
{
    public static TransformManyBlock<Datagram, Datagram> Create(
        StageOptions options, TaskScheduler loop, IDnsResolver resolver, ForbiddenAddresses forbidden, AccessControlList? acl = null)
    {
        var lookups = new LookupSlots(options.MaxParallelism);
        var maxWaiting = Math.Max(1, options.BoundedCapacity / 2);
        var waiting = 0;
        var blockOptions = BlockOptions.OnLoop(options, loop);
        blockOptions.MaxDegreeOfParallelism = DataflowBlockOptions.Unbounded; // the lookups are bounded instead, below

        return new(async datagram =>
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

                address = addresses[0];
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
            return [datagram];
        }, blockOptions);
    }
}
