using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Stages.Udp;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>Our UDP server, and our local (SOCKS5 TCP + UDP) in front of it, on loopback in this process.</summary>
internal sealed class UdpRelayChain : IAsyncDisposable
{
    private UdpRelayChain(ServerUdpRelay server, LocalUdpRelay localUdp, LocalTcpRelay local)
    {
        Server = server;
        LocalUdp = localUdp;
        Local = local;
    }

    public ServerUdpRelay Server { get; }

    public LocalUdpRelay LocalUdp { get; }

    public LocalTcpRelay Local { get; }

    public static ServerUdpRelay StartServer(RelayOptions options, IScheduler? scheduler = null, IPEndPoint? listen = null)
    {
        var server = new ServerUdpRelay(options, new SystemDnsResolver(), scheduler ?? ProgramScheduler.Instance);
        server.Start(listen ?? new IPEndPoint(IPAddress.Loopback, 0));
        return server;
    }

    /// <summary>Our local (TCP for the association, UDP for the data) pointed at <paramref name="server"/>.</summary>
    /// <remarks>
    /// TCP and UDP share one port number; the UDP side takes a free one and TCP follows. Another test may hold that
    /// TCP port (an outgoing connection's local port), so a collision retries with a new port.
    /// </remarks>
    public static (LocalUdpRelay Udp, LocalTcpRelay Tcp) StartLocal(RelayOptions options, IPEndPoint server) =>
        StartLocal(options, new UdpServerAddress(server));

    /// <summary>Our local whose UDP goes where <paramref name="server"/> says (its TCP to the address it says at start).</summary>
    public static (LocalUdpRelay Udp, LocalTcpRelay Tcp) StartLocal(RelayOptions options, UdpServerAddress server)
    {
        for (var attempt = 0; ; attempt++)
        {
            var udp = new LocalUdpRelay(options, server, ProgramScheduler.Instance);
            udp.Start(new IPEndPoint(IPAddress.Loopback, 0));
            var tcp = new LocalTcpRelay(options with { Listen = udp.LocalEndPoint, Server = server.Address }, ProgramScheduler.Instance, TimeProvider.System, udp);
            try
            {
                tcp.Start();
                return (udp, tcp);
            }
            catch (SocketException) when (attempt < 20)
            {
                udp.DisposeAsync().AsTask().Wait();
            }
        }
    }

    /// <summary>Our server, UDP and TCP on one port (as ss-local and ss-tunnel expect), retrying on a port collision.</summary>
    public static (ServerUdpRelay Udp, ServerTcpRelay Tcp) StartServerPair(RelayOptions options)
    {
        for (var attempt = 0; ; attempt++)
        {
            var udp = StartServer(options);
            var tcp = new ServerTcpRelay(options with { Listen = udp.LocalEndPoint }, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
            try
            {
                tcp.Start();
                return (udp, tcp);
            }
            catch (SocketException) when (attempt < 20)
            {
                udp.DisposeAsync().AsTask().Wait();
            }
        }
    }

    public static UdpRelayChain Start(string method, string password = "udp-test-password")
    {
        var server = StartServer(RelayChain.Options(method, password, new IPEndPoint(IPAddress.Loopback, 0)));
        var (udp, tcp) = StartLocal(RelayChain.Options(method, password, new IPEndPoint(IPAddress.Loopback, 0), server.LocalEndPoint), server.LocalEndPoint);
        return new UdpRelayChain(server, udp, tcp);
    }

    public async ValueTask DisposeAsync()
    {
        await Local.DisposeAsync();
        await LocalUdp.DisposeAsync();
        await Server.DisposeAsync();
    }
}
