using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A client connected through a tunnel and our server (aes-256-gcm) to a destination listener whose sockets have a
/// 4 KiB receive buffer, so that what it does not read soon backs up into the server. The server's idle timeout is
/// 1 s; the tunnel's is long (it hands everything on to the server and sees movement only when the server reads).
/// The destination is accepted by the test (<see cref="Listener"/>), once the client has begun.
/// </summary>
internal sealed class SlowDestinationChain : IAsyncDisposable
{
    private SlowDestinationChain(Socket listener, ServerTcpRelay server, TunnelRelay tunnel, Socket client)
    {
        Listener = listener;
        Server = server;
        Tunnel = tunnel;
        Client = client;
    }

    public Socket Listener { get; }

    public ServerTcpRelay Server { get; }

    public TunnelRelay Tunnel { get; }

    public Socket Client { get; }

    public static async Task<SlowDestinationChain> StartAsync(CancellationToken cancellationToken)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.ReceiveBufferSize = 4096;
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var loopback = new IPEndPoint(IPAddress.Loopback, 0);
        var server = new ServerTcpRelay(
            RelayChain.Options("aes-256-gcm", "test-password", loopback) with { IdleTimeout = TimeSpan.FromSeconds(1) },
            new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var tunnel = new TunnelRelay(
            RelayChain.Options("aes-256-gcm", "test-password", loopback, server.LocalEndPoint) with
            {
                IdleTimeout = TimeSpan.FromMinutes(2),
                TunnelDestination = ShadowsocksAddress.FromEndPoint((IPEndPoint)listener.LocalEndPoint!),
            },
            ProgramScheduler.Instance, TimeProvider.System);
        tunnel.Start();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var chain = new SlowDestinationChain(listener, server, tunnel, client);
        await client.ConnectAsync(tunnel.LocalEndPoint, cancellationToken);
        return chain;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Tunnel.DisposeAsync();
        await Server.DisposeAsync();
        Listener.Dispose();
    }
}
