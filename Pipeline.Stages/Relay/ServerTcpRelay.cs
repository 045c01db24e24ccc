using System.Net;
using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connect;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.ReadHeader;
using Shadowsocks.Pipeline.Stages.Reject;
using Shadowsocks.Pipeline.Stages.Resolve;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// <c>shadowsocks server</c> over TCP: waits for the client's bytes, decrypts, reads the address header, resolves,
/// connects and relays.
/// <code>
/// accept ─► [wait for bytes] ─► [decrypt + read header] ─► [resolve] ─► [connect to destination] ─► data stages (CipherDuplex)
///             ▲   │ timed out    │   │ failed (drained)       │ failed        │ failed
///             └───┼──────────────┘   └─────────────┐          │               │
///   incomplete:   └──────────────────────────► [reject: drain or close] ◄─────┴───────────────┘
///   wait again
/// </code>
/// Every link names the sessions it takes, and only failed ones go to reject: a stage at its bounded capacity
/// postpones what it is offered, Dataflow then offers it to the next link, and a catch-all link there would take a
/// healthy connection the wrong way. So the connections before a full stage wait in the previous stage's output.
/// One exception: a session the header stage sends back to the wait stage goes to reject if that stage has stopped
/// (the relay is being disposed; unbounded, it never postpones), where it would otherwise stay in the header stage's
/// output, never disposed, with every session behind it.
/// The header stage takes only the bytes that are there; a client that is slow to send (or silent) waits in the
/// wait stage, which holds no slot of the header stage's.
/// </summary>
internal sealed class ServerTcpRelay(
    RelayOptions options, IDnsResolver resolver, IScheduler scheduler, TimeProvider timeProvider, ISaltFilter? replays = null, ServerUsers? users = null) : ITcpRelay
{
    private static readonly DataflowLinkOptions s_propagate = new() { PropagateCompletion = true };
    private readonly List<AcceptLoop> _accepts = [];
    private IDisposable? _queues;

    /// <summary>The first bound endpoint (useful with port 0).</summary>
    public IPEndPoint LocalEndPoint => _accepts[0].LocalEndPoint;

    /// <summary>Every bound endpoint: <see cref="RelayOptions.Listen"/>, then <see cref="RelayOptions.MoreListens"/>.</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints => [.. _accepts.Select(static a => a.LocalEndPoint)];

    public int ActiveSessions => _accepts.Sum(static a => a.ActiveSessions);

    public int ServingSessions => _accepts.Sum(static a => a.CountSessions(static s => !s.Drained));

    public void Start()
    {
        var pipeline = options.Pipeline;

        // Connection-level stages, shared by every connection, in flow order.
        var waitForBytes = WaitForBytesStage.Create( // as long as a drain, from the last bytes: probes see one close
            "reading the address header", _ => options.IdleTimeout, timeProvider);
        var salts = replays ?? SaltFilters.For(options, timeProvider);
        var readHeader = ReadHeaderStage.Create(
            pipeline.Handshake, options.Cipher, options.MasterKey, timeProvider,
            salts, // same wait as a drain: probes see one close behaviour
            users ?? ServerUsers.For(options)); // the process's table when given (built once for all its relays)
        var lookups = new LookupSlots(pipeline.Resolve.MaxParallelism);
        var resolve = ResolveStage.Create(pipeline.Resolve, resolver, options.Acl, lookups, options.ConnectTimeout, timeProvider);
        var connect = ConnectStage.ToDestination(pipeline.Connect, options.ConnectTimeout, timeProvider, options.Forbidden,
            new OpenOptions(Interface: options.OutboundInterface, Source: options.OutboundAddress), options.Acl);
        // The answers' salts go into the filter too, so an answer sent back as a request is a replay (SIP004 and stream
        // ciphers read both directions with one key, as ss-libev does); a 2022 answer's header type refuses it already.
        var ownSalts = options.Cipher.Is2022 ? null : salts;
        var relay = new ActionBlock<TcpSession>(session => SessionRunner.Start(session, "server", plainSideIsClient: false, options, scheduler, timeProvider, ownSalts: ownSalts));
        var reject = RejectStage.Create(options.IdleTimeout, timeProvider);

        waitForBytes.LinkTo(readHeader, s_propagate, static s => s.IsAlive);
        waitForBytes.LinkTo(reject, static s => !s.IsAlive);
        readHeader.LinkTo(resolve, s_propagate, static s => s.IsAlive && s.PendingHeader is null);
        readHeader.LinkTo(waitForBytes, static s => s.IsAlive && s.PendingHeader is not null); // more of the header to come
        readHeader.LinkTo(reject, static s => !s.IsAlive || s.PendingHeader is not null); // or back to a wait stage that has stopped
        resolve.LinkTo(connect, s_propagate, static s => s.IsAlive);
        resolve.LinkTo(reject, static s => !s.IsAlive);
        connect.LinkTo(relay, s_propagate, static s => s.IsAlive);
        connect.LinkTo(reject, static s => !s.IsAlive);
        _queues = StableCompositeDisposable.Create(
            StageQueues.Register(
                (ReadHeaderStage.Name, () => readHeader.InputCount), (ResolveStage.Name, () => resolve.InputCount + lookups.Waiting), (ConnectStage.Name, () => connect.InputCount)),
            ReadBudgetGauges.Register(options.ReadBudget));

        foreach (var listen in (IEnumerable<IPEndPoint>)[options.Listen, .. options.MoreListens])
        {
            _accepts.Add(new AcceptLoop(options with { Listen = listen }, "server", waitForBytes, timeProvider, shadowsocksPort: true));
        }
    }

    /// <summary>
    /// A multi-user server's users taken off its list (<see cref="ServerUsers.Replace"/>): their open connections end
    /// (closed as at the idle timeout). Returns how many.
    /// </summary>
    public int EndConnectionsOf(IReadOnlySet<string> users) =>
        _accepts.Sum(accepts => accepts.EndSessions(session => session.User is { } user && users.Contains(user)));

    public void StopAccepting()
    {
        foreach (var accepts in _accepts)
        {
            accepts.StopAccepting();

            // A drained client (a probe, a scan) carries no user's data: the grace is not its. Closed now as its drain's
            // end would close it (TcpSession.End: a FIN, nothing sent), counted and disposed once, by its drain.
            accepts.EndSessions(static s => s.Drained);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queues?.Dispose();
        foreach (var accepts in _accepts)
        {
            await accepts.DisposeAsync().ConfigureAwait(false);
        }
    }
}
