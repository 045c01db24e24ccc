using System.Net;
using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.AddHeader;
using Shadowsocks.Pipeline.Stages.Connect;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Reject;
using Shadowsocks.Pipeline.Stages.Route;
using Shadowsocks.Pipeline.Stages.Socks5Trim;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// <c>shadowsocks local</c> over TCP: a SOCKS5 server whose CONNECTs go through the Shadowsocks server.
/// <code>
/// accept ─► [wait for bytes] ─► [socks5 handshake + trim] ─► [connect to server] ─► [reply + add header] ─► data stages (CipherDuplex)
///             ▲   │ timed out     │ │ │ failed                 │ failed               │ failed
///             └───┼───────────────┘ │ └────────────────────────┼──────────────────────┴─► [reject: SOCKS5 reply if one is owed, close]
///   incomplete:   └─────────────────┼───────────────────────────► [reject]
///   back to wait                    └ UDP ASSOCIATE (with -u) ─► [udp associate: reply, hold while the client keeps it open]
/// </code>
/// The handshake stage takes only the bytes that are there; a client that is slow to send (or silent) waits in the
/// wait stage, which holds no slot of the handshake stage's, until the handshake timeout (from the accept).
/// With an ACL (<c>--acl</c>) a route stage comes after the handshake, and the connections it sends directly take
/// their own way to the same data stages, which then copy instead of ciphering:
/// <code>
/// [socks5 handshake] ─► [route] ─► [connect to server] ─► ...
///                          └ direct ─► [connect to destination] ─► [reply] ─► data stages (plain)
/// </code>
/// Every link names the sessions it takes, and only failed ones go to reject: a stage at its bounded capacity
/// postpones what it is offered, Dataflow then offers it to the next link, and a catch-all link there would take a
/// healthy connection the wrong way. So the connections before a full stage wait in the previous stage's output.
/// One exception: a session the handshake stage sends back to the wait stage goes to reject if that stage has stopped
/// (the relay is being disposed; unbounded, it never postpones), where it would otherwise stay in the handshake
/// stage's output, never disposed, with every session behind it.
/// With <paramref name="udpOnly"/> (<c>-U</c>) the SOCKS5 port serves only UDP ASSOCIATE: a CONNECT is answered 7,
/// command not supported (as shadowsocks-rust's local in <c>udp_only</c> mode; ss-local <c>-U</c> has no TCP port at all).
/// </summary>
internal sealed class LocalTcpRelay(
    RelayOptions options, IScheduler scheduler, TimeProvider timeProvider, LocalUdpRelay? udp = null, IDnsResolver? serverNames = null,
    IDnsResolver? routeNames = null, bool udpOnly = false) : ITcpRelay
{
    private static readonly DataflowLinkOptions s_propagate = new() { PropagateCompletion = true };
    private AcceptLoop? _accepts;
    private IDisposable? _queues;

    /// <summary>The bound SOCKS5 endpoint (useful with port 0).</summary>
    public IPEndPoint LocalEndPoint => _accepts!.LocalEndPoint;

    public int ActiveSessions => _accepts?.ActiveSessions ?? 0;

    public int ServingSessions => ActiveSessions; // drains nothing

    /// <summary>The servers its connections go to, with their circuits (which the UDP side follows).</summary>
    public ServerFailover Servers { get; } =
        new([options.Server!, .. options.FallbackServers], options.ConnectTimeout, options.ConnectRetries, timeProvider);

    public void Start()
    {
        var pipeline = options.Pipeline;

        // Connection-level stages, shared by every connection, in flow order.
        var waitForBytes = WaitForBytesStage.Create( // the handshake timeout, from the accept
            "in the socks5 handshake", s => s.LeftOf(options.HandshakeTimeout, timeProvider), timeProvider,
            static () => PipelineTelemetry.HandshakeFailures.Add(1));
        var handshake = Socks5HandshakeStage.Create(pipeline.Handshake, options.HandshakeTimeout, timeProvider, udpAssociate: udp is not null, connect: !udpOnly, users: options.Socks5Users);
        var connect = ConnectStage.ToServer(pipeline.Connect,
            Servers, serverNames,
            new OpenOptions(options.FastOpen, options.Mptcp, options.OutboundInterface, options.OutboundAddress));
        var addHeader = AddHeaderStage.Create(pipeline.Handshake, replyToSocks5: true, timeProvider);
        var clientSide = ClientSide.For(options);
        var relay = new ActionBlock<TcpSession>(session => SessionRunner.Start(session, "local", plainSideIsClient: true, options, scheduler, timeProvider, clientSide));
        var reject = RejectStage.Create(options.IdleTimeout, timeProvider);

        waitForBytes.LinkTo(handshake, s_propagate, static s => s.IsAlive);
        waitForBytes.LinkTo(reject, static s => !s.IsAlive);
        handshake.LinkTo(waitForBytes, static s => s.IsAlive && s.PendingHandshake is not null); // more of the handshake to come
        if (udp is not null)
        {
            handshake.LinkTo(UdpAssociateStage.Create(udp.Associations, udp.LocalEndPoint), s_propagate, static s => s.IsAlive && s.PendingHandshake is null && s.UdpAssociate);
        }

        if (options.Acl is { } acl)
        {
            var route = RouteStage.Create(pipeline.Resolve, acl, routeNames ?? throw new ArgumentNullException(nameof(routeNames), "an ACL needs a resolver"));
            var connectDirect = ConnectStage.ToDestination(pipeline.Connect, options.ConnectTimeout, timeProvider, how: new OpenOptions(Interface: options.OutboundInterface));
            var replyDirect = Socks5ReplyStage.Create(pipeline.Handshake);
            handshake.LinkTo(route, s_propagate, static s => s.IsAlive && s.PendingHandshake is null && !s.UdpAssociate);
            handshake.LinkTo(reject, static s => !s.IsAlive || s.PendingHandshake is not null); // or back to a wait stage that has stopped
            route.LinkTo(connectDirect, s_propagate, static s => s.IsAlive && s.Direct);
            route.LinkTo(connect, s_propagate, static s => s.IsAlive && !s.Direct);
            route.LinkTo(reject, static s => !s.IsAlive);
            connectDirect.LinkTo(replyDirect, s_propagate, static s => s.IsAlive);
            connectDirect.LinkTo(reject, static s => !s.IsAlive);
            replyDirect.LinkTo(relay, static s => s.IsAlive); // the server's way completes the relay block
            replyDirect.LinkTo(reject, static s => !s.IsAlive);
        }
        else
        {
            handshake.LinkTo(connect, s_propagate, static s => s.IsAlive && s.PendingHandshake is null && !s.UdpAssociate);
            handshake.LinkTo(reject, static s => !s.IsAlive || s.PendingHandshake is not null); // or back to a wait stage that has stopped
        }

        connect.LinkTo(addHeader, s_propagate, static s => s.IsAlive);
        connect.LinkTo(reject, static s => !s.IsAlive);
        addHeader.LinkTo(relay, s_propagate, static s => s.IsAlive);
        addHeader.LinkTo(reject, static s => !s.IsAlive);
        _queues = StableCompositeDisposable.Create(
            StageQueues.Register(
                (Socks5HandshakeStage.Name, () => handshake.InputCount), (ConnectStage.Name, () => connect.InputCount), (AddHeaderStage.Name, () => addHeader.InputCount)),
            ReadBudgetGauges.Register(options.ReadBudget));

        _accepts = new AcceptLoop(options, "local", waitForBytes, timeProvider, clientSpeaksFirst: true); // SOCKS5: the greeting comes first
    }

    /// <summary>
    /// SOCKS5 users taken off the list, or given another password (a reload of <c>--socks5-auth</c>): the connections
    /// they logged in with end (a UDP association with its control connection). Returns how many.
    /// </summary>
    public int EndConnectionsOf(IReadOnlySet<string> users) =>
        _accepts?.EndSessions(session => session.User is { } user && users.Contains(user)) ?? 0;

    public void StopAccepting() => _accepts?.StopAccepting();

    public ValueTask DisposeAsync()
    {
        _queues?.Dispose();
        return _accepts?.DisposeAsync() ?? ValueTask.CompletedTask;
    }
}
