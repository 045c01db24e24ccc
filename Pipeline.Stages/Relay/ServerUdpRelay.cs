using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// <c>shadowsocks server</c> over UDP. Each client endpoint (with a 2022 method: each client session) gets a NAT entry
/// (its own outbound socket) that lives <c>udp_timeout</c> after its last datagram; a 2022 session's entry goes when
/// the session does.
/// <code>
/// out:  receive ─► [decrypt] ─► [read header] ─► [resolve] ─► [send through the client's NAT entry]
/// back: NAT entry receive ─► [add header: the reply's source] ─► [encrypt] ─► [send to the client]
/// </code>
/// Any datagram that fails a stage is dropped and counted; nothing else is affected. A replayed datagram (a salt seen
/// before, in <paramref name="replays"/>: the TCP relay's filter when given, so a process remembers salts once) is
/// dropped unanswered. A 2022 method keeps sessions by the client's session ID instead (<see cref="Udp2022ServerSessions"/>):
/// their packet IDs are the replay check, and the replies are sealed in the client's session and go to the address it
/// was last heard from. A multi-user server's table of users is <paramref name="users"/> when given (the process builds
/// it once for all its relays), else its own.
/// </summary>
internal sealed class ServerUdpRelay(
    RelayOptions options, IDnsResolver resolver, IScheduler scheduler, ISaltFilter? replays = null, TimeProvider? time = null, ServerUsers? users = null) : IAsyncDisposable
{
    private static readonly DataflowLinkOptions s_propagate = new() { PropagateCompletion = true };
    private UdpListenLoop? _listener;
    private UdpNatTable<IPEndPoint>? _nat;
    private UdpNatTable<Udp2022ServerSession>? _sessionNat;
    private Udp2022ServerSessions? _sessions;

    /// <summary>
    /// A multi-user server's users taken off its list (<see cref="ServerUsers.Replace"/>): their 2022 sessions end, with
    /// their NAT entries and sockets; their next packets find no user. Returns how many.
    /// </summary>
    public int EndSessionsOf(IReadOnlyCollection<ServerUser> users) =>
        _sessions?.ById.RemoveWhere((_, session) => session.User is { } user && users.Contains(user)) ?? 0;

    public IPEndPoint LocalEndPoint => _listener!.LocalEndPoint;

    public int Associations => _nat?.Count ?? _sessionNat?.Count ?? 0;

    public void Start(IPEndPoint listen)
    {
        var udp = options.Pipeline.Udp;
        _listener = new UdpListenLoop(listen, "udp server", options.ReusePort, options.ListenIpv6Only);
        var loop = _listener.Scheduler;

        _sessions = options.Cipher.Is2022
            ? new Udp2022ServerSessions(options, scheduler, time ?? TimeProvider.System, ended: session => _sessionNat?.Remove(session), users)
            : null;

        // Back, in flow order. The answers' salts go into the replay filter, so an answer sent back is a replay.
        var salts = _sessions is null ? replays ?? SaltFilters.For(options, time ?? TimeProvider.System) : null;
        var addHeader = UdpHeaderStages.AddHeader(udp, loop);
        IPropagatorBlock<Datagram, Datagram> encrypt = _sessions is null
            ? UdpCipherStages.Encrypt(udp, loop, options.Cipher, options.MasterKey, salts)
            : Udp2022CipherStages.SealFromServer(udp, loop, _sessions);
        var toClient = UdpSendStages.ToClient(udp, loop, _listener.Socket);
        addHeader.LinkTo(encrypt, s_propagate);
        encrypt.LinkTo(toClient, s_propagate);
        // A NAT entry per client address; with a 2022 method, per client session (SIP022 § 3.2.4), so a client whose
        // address changes keeps its outbound socket, and its replies go where it was last heard from.
        Socket Outbound(IPEndPoint _) => UdpSockets.ToDestinations(options.OutboundAddress, options.OutboundInterface);
        if (_sessions is null)
        {
            _nat = new UdpNatTable<IPEndPoint>(options.UdpMaxAssociations, options.UdpTimeout, scheduler, static client => client, Outbound, addHeader, _listener.Loop, "server");
        }
        else
        {
            // A session that ended (its table's callback removes its entry under the same lock) gets no new entry.
            _sessionNat = new UdpNatTable<Udp2022ServerSession>(
                options.UdpMaxAssociations, options.UdpTimeout, scheduler, static session => session.LastHeardFrom!, Outbound, addHeader, _listener.Loop, "server",
                admits: static session => !session.Ended);
        }

        // Out, in flow order.
        var decrypt = _sessions is null
            ? UdpCipherStages.Decrypt(udp, loop, options.Cipher, options.MasterKey, salts)
            : Udp2022CipherStages.OpenAtServer(udp, loop, _sessions);
        var readHeader = UdpHeaderStages.ReadHeader(udp, loop);
        var resolve = UdpResolveStage.Create(udp, loop, resolver, options.Forbidden, options.Acl, options.OutboundAddress?.AddressFamily);
        ITargetBlock<Datagram> forward = _sessionNat is null
            ? UdpSendStages.ThroughNat(udp, loop, _nat!, static d => d.Client, server: null)
            : UdpSendStages.ThroughNat(udp, loop, _sessionNat, static d => d.Session!, server: null);
        decrypt.LinkTo(readHeader, s_propagate);
        readHeader.LinkTo(resolve, s_propagate);
        resolve.LinkTo(forward, s_propagate);

        _listener.Receive(decrypt);
    }

    public ValueTask DisposeAsync()
    {
        _nat?.Dispose();
        _sessionNat?.Dispose();
        _listener?.Dispose();
        _sessions?.Dispose();
        return ValueTask.CompletedTask;
    }
}
