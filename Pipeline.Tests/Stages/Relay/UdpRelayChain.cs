using System.Net;
using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Relay;

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
        var server = new ServerUdpRelay(options, new SystemDnsResolver(), scheduler ?? TaskPoolScheduler.Default);
        server.Start(listen ?? new IPEndPoint(IPAddress.Loopback, 0));
        return server;
    }

    /// <summary>Our local (TCP for the association, UDP for the data) pointed at <paramref name="server"/>.</summary>
    public static (LocalUdpRelay Udp, LocalTcpRelay Tcp) StartLocal(RelayOptions options, IPEndPoint server)
    {
        var udp = new LocalUdpRelay(options, server, TaskPoolScheduler.Default);
        udp.Start(new IPEndPoint(IPAddress.Loopback, 0));
        var tcp = new LocalTcpRelay(options with { Listen = udp.LocalEndPoint, Server = server }, TaskPoolScheduler.Default, TimeProvider.System, udp);
        tcp.Start();
        return (udp, tcp);
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
