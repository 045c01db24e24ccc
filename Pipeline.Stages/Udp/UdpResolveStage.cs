using System.Net;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// Server: turns the datagram's target into an endpoint; a name that does not resolve, or a forbidden address, drops the
/// datagram. With an ACL (<c>--acl</c>), so do a client it refuses and a destination its outbound block list names.
/// </summary>
internal static class UdpResolveStage
{
    public static TransformManyBlock<Datagram, Datagram> Create(
        StageOptions options, TaskScheduler loop, IDnsResolver resolver, ForbiddenAddresses forbidden, AccessControlList? acl = null) =>
        new(async datagram =>
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
                var addresses = await resolver.ResolveAsync(target.Host!, CancellationToken.None).ConfigureAwait(false);
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
                return [];
            }

            if (acl?.BlocksOutbound(address) == true)
            {
                UdpCounters.Drop(datagram, "refused by the ACL");
                return [];
            }

            datagram.Resolved = new IPEndPoint(address, target.Port);
            return [datagram];
        }, BlockOptions.OnLoop(options, loop));
}
