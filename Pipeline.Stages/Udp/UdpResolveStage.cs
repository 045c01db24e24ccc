using System.Net;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>Server: turns the datagram's target into an endpoint; a name that does not resolve, or a forbidden address, drops the datagram.</summary>
internal static class UdpResolveStage
{
    public static TransformManyBlock<Datagram, Datagram> Create(StageOptions options, TaskScheduler loop, IDnsResolver resolver, ForbiddenAddresses forbidden) =>
        new(async datagram =>
        {
            var target = datagram.Target;
            var address = target.Ip;
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

            datagram.Resolved = new IPEndPoint(address, target.Port);
            return [datagram];
        }, BlockOptions.OnLoop(options, loop));
}
