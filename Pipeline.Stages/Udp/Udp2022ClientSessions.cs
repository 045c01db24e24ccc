using System.Net;
using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// A SIP022 UDP client's (local, tunnel) codec and its sessions, one per client address: as many as the NAT table
/// holds, each kept <c>udp_timeout</c> after its last packet but at least 60 s, and disposed as it leaves; all end when
/// the server changes (<see cref="EndAll"/>).
/// </summary>
internal sealed class Udp2022ClientSessions : IDisposable
{
    public Udp2022ClientSessions(RelayOptions options, IScheduler scheduler, TimeProvider time)
    {
        Codec = new Udp2022Codec(options.Cipher, options.MasterKey, time, identities: IdentityChain.For(options));
        ByAddress = new LruCache<IPEndPoint, Udp2022ClientSession>(
            options.UdpMaxAssociations, SaltFilters.Keep2022(options.UdpTimeout), sliding: true, scheduler, static (_, session, _) => session.Dispose());
        NewSession = _ => Codec.NewClientSession();
    }

    /// <summary>A new session for a client address (one delegate, made once).</summary>
    public Func<IPEndPoint, Udp2022ClientSession> NewSession { get; }

    public Udp2022Codec Codec { get; }

    public LruCache<IPEndPoint, Udp2022ClientSession> ByAddress { get; }

    /// <summary>
    /// Ends every session (disposed as it leaves the table): UDP moved to another server, or the server's address changed,
    /// so each client address's next datagram starts a new session there. A datagram on its way in an ended session is
    /// dropped (its session is <see cref="Udp2022ClientSession.Ended"/>).
    /// </summary>
    /// <remarks>
    /// Before, the sessions went on across a move: back at a server that had restarted meanwhile, its new server session
    /// was a client session's third while the first (that server's before the restart) had been heard within the minute,
    /// which SIP022 § 3.2.4 refuses: its replies were dropped as replayed for up to a minute.
    /// </remarks>
    public void EndAll() => ByAddress.RemoveWhere(static _ => true);

    public void Dispose()
    {
        ByAddress.Dispose();
    }
}
