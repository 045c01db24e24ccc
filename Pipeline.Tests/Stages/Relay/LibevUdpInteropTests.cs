using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// UDP against real shadowsocks-libev, both ways, for every method it speaks: our local → <c>ss-server -u</c>,
/// <c>ss-local -u</c> → our server, our tunnel → <c>ss-server -u</c>, <c>ss-tunnel -u</c> → our server.
/// Echo round trips must be byte-exact.
/// </summary>
public sealed class LibevUdpInteropTests
{
    private const string Password = "udp-interop-password";
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    public static TheoryData<string> Methods() => new(LibevPeer.Methods);

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_ToLibevServer(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo4 = new UdpEchoDestination(IPAddress.Loopback);
        using var echo6 = new UdpEchoDestination(IPAddress.IPv6Loopback);
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-u", "-k", Password, "-m", method);
        var options = RelayChain.Options(method, Password, new IPEndPoint(IPAddress.Loopback, 0), server.EndPoint);
        var (udp, tcp) = UdpRelayChain.StartLocal(options, server.EndPoint);
        await using var _ = udp;
        await using var __ = tcp;
        using var client = await Socks5UdpTestClient.AssociateAsync(tcp.LocalEndPoint, cancel.Token);
        foreach (var (host, port) in new[] { ("127.0.0.1", echo4.EndPoint.Port), ("::1", echo6.EndPoint.Port), ("localhost", echo4.EndPoint.Port) })
        {
            var payload = RandomNumberGenerator.GetBytes(1200);
            await client.SendAsync(host, port, payload, cancel.Token);
            Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task LibevLocal_ToOurServer(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo4 = new UdpEchoDestination(IPAddress.Loopback);
        using var echo6 = new UdpEchoDestination(IPAddress.IPv6Loopback);
        var (server, tcpServer) = UdpRelayChain.StartServerPair(RelayChain.Options(method, Password, new IPEndPoint(IPAddress.Loopback, 0)));
        await using var _ = server;
        await using var __ = tcpServer;
        await using var local = await LibevPeer.StartAsync("ss-local", "-s", "127.0.0.1", "-p", Port(server.LocalEndPoint), "-b", "127.0.0.1", "-u", "-k", Password, "-m", method);
        using var client = await Socks5UdpTestClient.AssociateAsync(local.EndPoint, cancel.Token);
        foreach (var (host, port) in new[] { ("127.0.0.1", echo4.EndPoint.Port), ("::1", echo6.EndPoint.Port), ("localhost", echo4.EndPoint.Port) })
        {
            var payload = RandomNumberGenerator.GetBytes(1200);
            await client.SendAsync(host, port, payload, cancel.Token);
            Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurTunnel_ToLibevServer(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-u", "-k", Password, "-m", method);
        var options = RelayChain.Options(method, Password, new IPEndPoint(IPAddress.Loopback, 0), server.EndPoint)
            with { TunnelDestination = ShadowsocksAddress.FromEndPoint(echo.EndPoint) };
        await using var tunnel = new TunnelUdpRelay(options, server.EndPoint, ProgramScheduler.Instance);
        tunnel.Start(new IPEndPoint(IPAddress.Loopback, 0));
        await AssertPlainEchoAsync(tunnel.LocalEndPoint, cancel.Token);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task LibevTunnel_ToOurServer(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var (server, tcpServer) = UdpRelayChain.StartServerPair(RelayChain.Options(method, Password, new IPEndPoint(IPAddress.Loopback, 0)));
        await using var _ = server;
        await using var __ = tcpServer;
        await using var tunnel = await LibevPeer.StartAsync("ss-tunnel", "-s", "127.0.0.1", "-p", Port(server.LocalEndPoint), "-b", "127.0.0.1", "-u",
            "-L", $"127.0.0.1:{echo.EndPoint.Port}", "-k", Password, "-m", method);
        await AssertPlainEchoAsync(tunnel.EndPoint, cancel.Token);
    }

    private static async Task AssertPlainEchoAsync(IPEndPoint tunnel, CancellationToken cancellationToken)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var buffer = new byte[65_536];
        foreach (var size in new[] { 1, 512, 1400 })
        {
            var payload = RandomNumberGenerator.GetBytes(size);
            await client.SendToAsync(payload, SocketFlags.None, tunnel, cancellationToken);
            var received = await client.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            Assert.Equal(payload, buffer.AsSpan(0, received).ToArray());
        }
    }
}
