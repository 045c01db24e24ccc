using System.Net;
using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// One SIP022 UDP relay side's codec and its sessions by client address: as many as the NAT table holds, each kept
/// <c>udp_timeout</c> after its last packet but at least 60 s (SIP022 § 3.2.4), and disposed as it leaves.
/// </summary>
internal sealed class Udp2022Sessions<TSession> : IDisposable
    where TSession : class, IDisposable
{
    public Udp2022Sessions(RelayOptions options, IScheduler scheduler, TimeProvider time)
    {
        Codec = new Udp2022Codec(options.Cipher, options.MasterKey, time);
        var keep = options.UdpTimeout > TimeSpan.FromMinutes(1) ? options.UdpTimeout : TimeSpan.FromMinutes(1);
        Table = new LruCache<IPEndPoint, TSession>(options.UdpMaxAssociations, keep, sliding: true, scheduler, static (_, session, _) => session.Dispose());
    }

    public Udp2022Codec Codec { get; }

    public LruCache<IPEndPoint, TSession> Table { get; }

    public void Dispose()
    {
        Table.Dispose();
        Codec.Dispose();
    }
}
