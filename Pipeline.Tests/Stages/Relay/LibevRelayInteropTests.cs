using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// Our relays against real shadowsocks-libev peers, for every method libev accepts: our local → ss-server,
/// ss-local → our server, our tunnel → ss-server, ss-tunnel → our server, each moving 50 MiB both ways.
/// </summary>
public sealed class LibevRelayInteropTests
{
    private const string Password = "interop-password";

    /// <summary>50 MiB each way, as the issue asks.</summary>
    private const int Payload = 50 << 20;

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(180);

    public static TheoryData<string> Methods() => new(LibevPeer.Methods);

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_ToLibevServer_EchoesIntact(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", method, "-t", "60");
        await using var local = new LocalTcpRelay(RelayChain.Options(method, Password, Loopback(), server.EndPoint), ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, Payload, cancel.Token, halfClose: false);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task LibevLocal_ToOurServer_EchoesIntact(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var server = new ServerTcpRelay(RelayChain.Options(method, Password, Loopback()), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        await using var local = await LibevPeer.StartAsync("ss-local", "-s", "127.0.0.1", "-p", Port(server.LocalEndPoint), "-b", "127.0.0.1", "-k", Password, "-m", method, "-t", "60");
        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.EndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, Payload, cancel.Token, halfClose: false);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurTunnel_ToLibevServer_EchoesIntact(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", method, "-t", "60");
        var options = RelayChain.Options(method, Password, Loopback(), server.EndPoint) with { TunnelDestination = ShadowsocksAddress.FromEndPoint(destination.EndPoint) };
        await using var tunnel = new TunnelRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        tunnel.Start();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(tunnel.LocalEndPoint, cancel.Token);
        await Transfer.EchoRoundTripAsync(socket, Payload, cancel.Token, halfClose: false);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task LibevTunnel_ToOurServer_EchoesIntact(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var server = new ServerTcpRelay(RelayChain.Options(method, Password, Loopback()), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        await using var tunnel = await LibevPeer.StartAsync("ss-tunnel", "-s", "127.0.0.1", "-p", Port(server.LocalEndPoint), "-b", "127.0.0.1",
            "-L", $"127.0.0.1:{destination.EndPoint.Port}", "-k", Password, "-m", method, "-t", "60");
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(tunnel.EndPoint, cancel.Token);
        await Transfer.EchoRoundTripAsync(socket, Payload, cancel.Token, halfClose: false);
    }

    [Fact]
    public async Task Curl_Socks5Hostname_ThroughOurLocalAndLibevServer()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var web = new TinyHttpServer("hello through the pipeline");
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", "aes-256-gcm", "-t", "60");
        await using var local = new LocalTcpRelay(RelayChain.Options("aes-256-gcm", Password, Loopback(), server.EndPoint), ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        var output = await Curl.RunAsync(["-sS", "--max-time", "20", "--socks5-hostname", $"127.0.0.1:{local.LocalEndPoint.Port}", $"http://localhost:{web.EndPoint.Port}/"], cancel.Token);
        Assert.Equal("hello through the pipeline", output);
    }

    private static IPEndPoint Loopback() => new(IPAddress.Loopback, 0);
}
