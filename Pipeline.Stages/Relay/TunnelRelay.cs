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

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// <c>shadowsocks tunnel</c> over TCP: every accepted connection goes through the server to one fixed destination.
/// <code>
/// accept ─► [set destination] ─► [connect to server] ─► [add header] ─► data stages (CipherDuplex)
///                                      │ failed              │ failed
///                                      └───────► [reject: close] ◄┘
/// </code>
/// Every link names the sessions it takes, and only failed ones go to reject: a stage at its bounded capacity
/// postpones what it is offered, Dataflow then offers it to the next link, and a catch-all link there would take a
/// healthy connection the wrong way. So the connections before a full stage wait in the previous stage's output.
/// </summary>
internal sealed class TunnelRelay(RelayOptions options, IScheduler scheduler, TimeProvider timeProvider, IDnsResolver? serverNames = null) : ITcpRelay
{
    private static readonly DataflowLinkOptions s_propagate = new() { PropagateCompletion = true };
    private AcceptLoop? _accepts;
    private IDisposable? _queues;

    public IPEndPoint LocalEndPoint => _accepts!.LocalEndPoint;

    public int ActiveSessions => _accepts?.ActiveSessions ?? 0;

    public int ServingSessions => ActiveSessions; // drains nothing

    /// <summary>The servers its connections go to, with their circuits (which the UDP side follows).</summary>
    public ServerFailover Servers { get; } =
        new([options.Server!, .. options.FallbackServers], options.ConnectTimeout, options.ConnectRetries, timeProvider);

    public void Start()
    {
        var pipeline = options.Pipeline;
        var destination = options.TunnelDestination ?? throw new InvalidOperationException("A tunnel needs a destination (-L).");
        var destinationHost = destination.Host ?? destination.Ip!.ToString();

        // Connection-level stages, shared by every connection, in flow order.
        var setDestination = new TransformBlock<TcpSession, TcpSession>(session =>
        {
            session.Destination = destination;
            // As the local's handshake and the server's header name theirs: the span and the -v line say where it goes.
            session.Span?.SetTag(TagNames.ServerAddress, destinationHost);
            session.Span?.SetTag(TagNames.ServerPort, (int)destination.Port);
            return session;
        }, BlockOptions.Shared(pipeline.Handshake));
        var connect = ConnectStage.ToServer(pipeline.Connect,
            Servers, serverNames,
            new OpenOptions(options.FastOpen, options.Mptcp, options.OutboundInterface, options.OutboundAddress));
        var addHeader = AddHeaderStage.Create(pipeline.Handshake, replyToSocks5: false, timeProvider);
        var clientSide = ClientSide.For(options);
        var relay = new ActionBlock<TcpSession>(session => SessionRunner.Start(session, "tunnel", plainSideIsClient: true, options, scheduler, timeProvider, clientSide));
        var reject = RejectStage.Create(options.IdleTimeout, timeProvider);

        setDestination.LinkTo(connect, s_propagate);
        connect.LinkTo(addHeader, s_propagate, static s => s.IsAlive);
        connect.LinkTo(reject, static s => !s.IsAlive);
        addHeader.LinkTo(relay, s_propagate, static s => s.IsAlive);
        addHeader.LinkTo(reject, static s => !s.IsAlive);
        _queues = StableCompositeDisposable.Create(
            StageQueues.Register((ConnectStage.Name, () => connect.InputCount), (AddHeaderStage.Name, () => addHeader.InputCount)),
            ReadBudgetGauges.Register(options.ReadBudget));

        _accepts = new AcceptLoop(options, "tunnel", setDestination, timeProvider);
    }

    public void StopAccepting() => _accepts?.StopAccepting();

    public ValueTask DisposeAsync()
    {
        _queues?.Dispose();
        return _accepts?.DisposeAsync() ?? ValueTask.CompletedTask;
    }
}
