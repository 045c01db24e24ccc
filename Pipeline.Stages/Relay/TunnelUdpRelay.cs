using System.Net;
using System.Reactive.Concurrency;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// <c>shadowsocks tunnel -u</c>: every datagram to the local port goes to the fixed destination (<c>-L</c>) through
/// the server (the common case: DNS through the tunnel).
/// <code>
/// out:  receive ─► [add header: the fixed destination] ─► [encrypt] ─► [send to the server through the client's NAT entry]
/// back: NAT entry receive ─► [decrypt] ─► [strip header] ─► [send to the client]
/// </code>
/// </summary>
/// <param name="server">The server's address, followed when a server given by name moves.</param>
internal sealed class TunnelUdpRelay(RelayOptions options, UdpServerAddress server, IScheduler scheduler, TimeProvider? time = null) : IAsyncDisposable
{
    private static readonly DataflowLinkOptions s_propagate = new() { PropagateCompletion = true };
    private readonly UdpServerAddress _server = server;
    private UdpListenLoop? _listener;
    private UdpNatTable<IPEndPoint>? _nat;
    private Udp2022ClientSessions? _sessions;

    public TunnelUdpRelay(RelayOptions options, IPEndPoint server, IScheduler scheduler, TimeProvider? time = null)
        : this(options, new UdpServerAddress(server), scheduler, time)
    {
    }

    public IPEndPoint LocalEndPoint => _listener!.LocalEndPoint;

    public int Associations => _nat?.Count ?? 0;

    public void Start(IPEndPoint listen)
    {
        var udp = options.Pipeline.Udp;
        _listener = new UdpListenLoop(listen, "udp tunnel", options.ReusePort, options.ListenIpv6Only);
        var loop = _listener.Scheduler;

        _sessions = options.Cipher.Is2022 ? new Udp2022ClientSessions(options, scheduler, time ?? TimeProvider.System) : null;

        // Back, in flow order.
        var decrypt = _sessions is null ? UdpCipherStages.Decrypt(udp, loop, options.Cipher, options.MasterKey) : Udp2022CipherStages.OpenAtClient(udp, loop, _sessions);
        var stripHeader = UdpHeaderStages.StripHeader(udp, loop);
        var toClient = UdpSendStages.ToClient(udp, loop, _listener.Socket);
        decrypt.LinkTo(stripHeader, s_propagate);
        stripHeader.LinkTo(toClient, s_propagate);
        _nat = new UdpNatTable<IPEndPoint>(options.UdpMaxAssociations, options.UdpTimeout, scheduler, static client => client, _ => UdpSockets.ToServer(_server.Address, options.OutboundInterface, options.OutboundAddress), decrypt, _listener.Loop, "tunnel");
        _server.Changed += _ =>
        {
            _nat?.RemoveWhere(static _ => true); // their sockets are connected to the old address: the next datagrams open new ones
            _sessions?.EndAll(); // and new 2022 sessions: a server gone back to may have restarted, and refuse a third server session
        };

        // Out, in flow order.
        var addHeader = UdpHeaderStages.AddHeader(udp, loop, options.TunnelDestination!.Value);
        IPropagatorBlock<Datagram, Datagram> encrypt = _sessions is null
            ? UdpCipherStages.Encrypt(udp, loop, options.Cipher, options.MasterKey)
            : Udp2022CipherStages.SealFromClient(udp, loop, _sessions);
        var forward = UdpSendStages.ThroughNat(udp, loop, _nat, static d => d.Client, _server);
        addHeader.LinkTo(encrypt, s_propagate);
        encrypt.LinkTo(forward, s_propagate);

        _listener.Receive(addHeader);
    }

    public ValueTask DisposeAsync()
    {
        _nat?.Dispose();
        _listener?.Dispose();
        _sessions?.Dispose();
        return ValueTask.CompletedTask;
    }
}
