using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// <c>shadowsocks server</c> over UDP. Each client endpoint gets a NAT entry (its own outbound socket) that lives
/// <c>udp_timeout</c> after its last datagram.
/// <code>
/// out:  receive ─► [decrypt] ─► [read header] ─► [resolve] ─► [send through the client's NAT entry]
/// back: NAT entry receive ─► [add header: the reply's source] ─► [encrypt] ─► [send to the client]
/// </code>
/// Any datagram that fails a stage is dropped and counted; nothing else is affected.
/// </summary>
internal sealed class ServerUdpRelay(RelayOptions options, IDnsResolver resolver, IScheduler scheduler) : IAsyncDisposable
{
    private static readonly DataflowLinkOptions s_propagate = new() { PropagateCompletion = true };
    private readonly CancellationTokenSource _stop = new();
    private Socket? _socket;
    private UdpNatTable? _nat;

    public IPEndPoint LocalEndPoint => (IPEndPoint)_socket!.LocalEndPoint!;

    public int Associations => _nat?.Count ?? 0;

    public void Start(IPEndPoint listen)
    {
        var udp = options.Pipeline.Udp;
        _socket = UdpSockets.Listen(listen);

        // Back, in flow order.
        var addHeader = UdpHeaderStages.AddHeader(udp);
        var encrypt = UdpCipherStages.Encrypt(udp, options.Cipher, options.MasterKey);
        var toClient = UdpSendStages.ToClient(udp, _socket);
        addHeader.LinkTo(encrypt, s_propagate);
        encrypt.LinkTo(toClient, s_propagate);
        _nat = new UdpNatTable(options.UdpMaxAssociations, options.UdpTimeout, scheduler, static _ => UdpSockets.ToDestinations(), addHeader, "server");

        // Out, in flow order.
        var decrypt = UdpCipherStages.Decrypt(udp, options.Cipher, options.MasterKey);
        var readHeader = UdpHeaderStages.ReadHeader(udp);
        var resolve = UdpResolveStage.Create(udp, resolver, options.Forbidden);
        var forward = UdpSendStages.ThroughNat(udp, _nat, server: null);
        decrypt.LinkTo(readHeader, s_propagate);
        readHeader.LinkTo(resolve, s_propagate);
        resolve.LinkTo(forward, s_propagate);

        _ = UdpReceiveLoop.RunAsync(_socket, decrypt, admit: null, "out", _stop.Token);
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _socket?.Dispose();
        _nat?.Dispose();
        return ValueTask.CompletedTask;
    }
}
