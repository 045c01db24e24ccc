using System.Net;
using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// A SIP022 UDP server's codec and its sessions. SIP022 § 3.2.4: sessions go by the client's session ID (which owns
/// them: they are disposed as they leave that table), and each remembers the address it was last heard from, where
/// the replies go (the NAT table and <see cref="ByAddress"/> go by address). So a client whose address changes keeps
/// its session, and a packet replayed from another address meets the same replay window. Kept <c>udp_timeout</c>
/// after the last packet either way, but at least 60 s.
/// </summary>
internal sealed class Udp2022ServerSessions : IDisposable
{
    public Udp2022ServerSessions(RelayOptions options, IScheduler scheduler, TimeProvider time)
    {
        Codec = new Udp2022Codec(options.Cipher, options.MasterKey, time);
        ById = new LruCache<ulong, Udp2022ServerSession>(options.UdpMaxAssociations, Keep(options), sliding: true, scheduler, static (_, session, _) => session.Dispose());
        ByAddress = new LruCache<IPEndPoint, Udp2022ServerSession>(options.UdpMaxAssociations, Keep(options), sliding: true, scheduler);
        Find = id => ById.TryGet(id, out var session) ? session : null;
    }

    public Udp2022Codec Codec { get; }

    /// <summary>Sessions by client session ID: the owner.</summary>
    public LruCache<ulong, Udp2022ServerSession> ById { get; }

    /// <summary>The session each client address was last heard in: for the replies.</summary>
    public LruCache<IPEndPoint, Udp2022ServerSession> ByAddress { get; }

    /// <summary><see cref="ById"/> as the codec asks it (one delegate, made once).</summary>
    public Func<ulong, Udp2022ServerSession?> Find { get; }

    /// <summary>SIP022 § 3.2.4: sessions are remembered at least 60 s.</summary>
    internal static TimeSpan Keep(RelayOptions options) => options.UdpTimeout > TimeSpan.FromMinutes(1) ? options.UdpTimeout : TimeSpan.FromMinutes(1);

    public void Dispose()
    {
        ByAddress.Dispose();
        ById.Dispose();
        Codec.Dispose();
    }
}
