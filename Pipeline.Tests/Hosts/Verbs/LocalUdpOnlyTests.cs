using System.Net;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// <c>local -U</c> (<c>mode: udp_only</c>): its SOCKS5 port is there for UDP ASSOCIATE only. A CONNECT was relayed as
/// with <c>-u</c> (and the start line said "tcp and udp"); shadowsocks-rust's local answers it 7, command not supported.
/// </summary>
public sealed class LocalUdpOnlyTests
{
    [Fact]
    public async Task LocalWithUdpOnly_RefusesConnect_AndServesUdpAssociate()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var environment = new Dictionary<string, string>();
        // The server relays TCP too, so a CONNECT the local let through would succeed.
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "udp-only", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-U", "-s", "127.0.0.1", "-p", Port(serverAt), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "udp-only", "-m", "aes-256-gcm");
        using var __ = local;

        using var destination = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        destination.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        destination.Listen(4);
        var (client, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", ((IPEndPoint)destination.LocalEndPoint!).Port, cancel.Token);
        using var ___ = client;
        Assert.Equal(7, reply); // command not supported
        Assert.Contains(" udp (SOCKS5: UDP ASSOCIATE only), method aes-256-gcm", local.Output);

        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        using var association = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
        await association.SendAsync("127.0.0.1", echo.EndPoint.Port, "udp only"u8, cancel.Token);
        Assert.Equal("udp only", Encoding.ASCII.GetString(await association.ReceiveAsync(cancel.Token)));
    }
}
