using System.Net;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>Server: turns the datagram's target into an endpoint; a name that does not resolve drops the datagram.</summary>
internal static class UdpResolveStage
{
    public static TransformManyBlock<Datagram, Datagram> Create(StageOptions options, IDnsResolver resolver) =>
        new(async datagram =>
        {
            var target = datagram.Target;
            if (target.Ip is { } ip)
            {
                datagram.Resolved = new IPEndPoint(ip, target.Port);
                return [datagram];
            }

            var addresses = await resolver.ResolveAsync(target.Host!, CancellationToken.None).ConfigureAwait(false);
            if (addresses.Length == 0)
            {
                UdpCounters.Drop(datagram, "resolve failed");
                return [];
            }

            datagram.Resolved = new IPEndPoint(addresses[0], target.Port);
            return [datagram];
        }, BlockOptions.Shared(options));
}
