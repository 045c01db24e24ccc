using System.Net;
using System.Reactive.Concurrency;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// <c>shadowsocks local -u</c>: the UDP half of SOCKS5 UDP ASSOCIATE. Datagrams are taken only from addresses that
/// hold a live association (<see cref="Associations"/>, kept by the TCP relay's control connections).
/// <code>
/// out:  receive (associated clients only) ─► [trim RSV/FRAG] ─► [encrypt] ─► [send to the server through the client's NAT entry]
/// back: NAT entry receive ─► [decrypt] ─► [add RSV/FRAG] ─► [send to the client]
/// </code>
/// </summary>
internal sealed class LocalUdpRelay : IAsyncDisposable
{
    private static readonly DataflowLinkOptions s_propagate = new() { PropagateCompletion = true };
    private readonly RelayOptions _options;
    private readonly UdpServerAddress _server;
    private readonly IScheduler _scheduler;
    private readonly TimeProvider _time;
    private UdpListenLoop? _listener;
    private UdpNatTable<IPEndPoint>? _nat;
    private Udp2022ClientSessions? _sessions;

    public LocalUdpRelay(RelayOptions options, IPEndPoint server, IScheduler scheduler, TimeProvider? time = null)
        : this(options, new UdpServerAddress(server), scheduler, time)
    {
    }

    /// <param name="server">The server's address, followed when a server given by name moves.</param>
    public LocalUdpRelay(RelayOptions options, UdpServerAddress server, IScheduler scheduler, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _options = options;
        _server = server;
        _scheduler = scheduler;
        Associations = new UdpAssociations(ended => _nat?.RemoveWhere(ended.Contains));
    }

    /// <summary>The live UDP ASSOCIATEs (their control connections) and the client endpoints attached to each.</summary>
    public UdpAssociations Associations { get; }

    public IPEndPoint LocalEndPoint => _listener!.LocalEndPoint;

    public int NatEntries => _nat?.Count ?? 0;

    public void Start(IPEndPoint listen)
    {
        var udp = _options.Pipeline.Udp;
        _listener = new UdpListenLoop(listen, "udp local", _options.ReusePort, _options.ListenIpv6Only);
        var loop = _listener.Scheduler;

        _sessions = _options.Cipher.Is2022 ? new Udp2022ClientSessions(_options, _scheduler, _time) : null;

        // Back, in flow order.
        var decrypt = _sessions is null ? UdpCipherStages.Decrypt(udp, loop, _options.Cipher, _options.MasterKey) : Udp2022CipherStages.OpenAtClient(udp, loop, _sessions);
        var addSocks5 = UdpHeaderStages.AddSocks5(udp, loop);
        var toClient = UdpSendStages.ToClient(udp, loop, _listener.Socket);
        decrypt.LinkTo(addSocks5, s_propagate);
        addSocks5.LinkTo(toClient, s_propagate);
        _nat = new UdpNatTable<IPEndPoint>(_options.UdpMaxAssociations, _options.UdpTimeout, _scheduler, static client => client, _ => UdpSockets.ToServer(_server.Address, _options.OutboundInterface, _options.OutboundAddress), decrypt, _listener.Loop, "local",
            admits: Associations.Attach, // asked again as an entry would be made (the association may have ended since), which attaches the client to one
            removed: Associations.Detach); // an entry that expires lets go of its client port
        _server.Changed += _ =>
        {
            _nat?.RemoveWhere(static _ => true); // their sockets are connected to the old address: the next datagrams open new ones
            _sessions?.EndAll(); // and new 2022 sessions: a server gone back to may have restarted, and refuse a third server session
        };

        // Out, in flow order.
        var trimSocks5 = UdpHeaderStages.TrimSocks5(udp, loop);
        IPropagatorBlock<Datagram, Datagram> encrypt = _sessions is null
            ? UdpCipherStages.Encrypt(udp, loop, _options.Cipher, _options.MasterKey)
            : Udp2022CipherStages.SealFromClient(udp, loop, _sessions);
        var forward = UdpSendStages.ThroughNat(udp, loop, _nat, static d => d.Client, _server);
        trimSocks5.LinkTo(encrypt, s_propagate);
        encrypt.LinkTo(forward, s_propagate);

        _listener.Receive(trimSocks5, d => Associations.Contains(d.Client.Address));
    }

    public ValueTask DisposeAsync()
    {
        _nat?.Dispose();
        _listener?.Dispose();
        _sessions?.Dispose();
        return ValueTask.CompletedTask;
    }
}
