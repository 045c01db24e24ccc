using System.Net;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// Where outbound traffic leaves from: the server's <c>-b ADDR</c> (as ss-server's: the source address of its
/// connections and datagrams to destinations; it was ignored) and <c>-i IFACE</c> on every verb.
/// </summary>
public sealed class OutboundTests
{
    private static readonly IPAddress s_source = IPAddress.Parse("127.0.0.2");

    [Fact]
    public async Task ServerWithB_TcpAndUdpReachTheDestinationFromThatAddress()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var environment = new Dictionary<string, string>();
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-b", "127.0.0.2", "-i", "lo", "-k", "outbound", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-u", "-s", "127.0.0.1", "-p", Port(serverAt), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-i", "lo", "-k", "outbound", "-m", "aes-256-gcm");
        using var __ = local;

        // TCP: the destination sees the connection come from -b's address.
        using var destination = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        destination.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        destination.Listen(4);
        var (client, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", ((IPEndPoint)destination.LocalEndPoint!).Port, cancel.Token);
        using var ___ = client;
        Assert.Equal(0, reply);
        await client.SendAsync("ping"u8.ToArray(), SocketFlags.None, cancel.Token);
        using var accepted = await destination.AcceptAsync(cancel.Token);
        Assert.Equal(s_source, ((IPEndPoint)accepted.RemoteEndPoint!).Address);
        var ping = new byte[4];
        await Socks5TestClient.ReadExactlyAsync(accepted, ping, cancel.Token);
        Assert.Equal("ping", Encoding.ASCII.GetString(ping));

        // UDP: so does a datagram, and the answer finds its way back.
        using var udpDestination = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udpDestination.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using var association = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
        await association.SendAsync("127.0.0.1", ((IPEndPoint)udpDestination.LocalEndPoint!).Port, "hello"u8, cancel.Token);
        var buffer = new byte[64];
        var received = await udpDestination.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancel.Token);
        var sender = (IPEndPoint)received.RemoteEndPoint;
        Assert.Equal(s_source, sender.Address);
        Assert.Equal("hello", Encoding.ASCII.GetString(buffer, 0, received.ReceivedBytes));
        await udpDestination.SendToAsync("world"u8.ToArray(), SocketFlags.None, sender, cancel.Token);
        Assert.Equal("world", Encoding.ASCII.GetString(await association.ReceiveAsync(cancel.Token)));
    }

    [Fact]
    public async Task ServerWithB_NotAnAddressOfThisMachine_IsRefusedAtStart()
    {
        var error = new StringWriter();
        var code = await Program.RunAsync(
            ["server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-b", "192.0.2.1", "-k", "outbound", "-m", "aes-256-gcm"],
            new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.StartsWith("shadowsocks: -b: 192.0.2.1 is not an address of this machine", error.ToString());
    }

    [Fact]
    public async Task LocalWithOutboundBindAddr_ReachesTheServerFromThatAddress_TcpAndUdp()
    {
        // shadowsocks-rust's outbound_bind_addr on the local; the server admits only 127.0.0.2 (its ACL), so a
        // connection from anywhere else would be closed at once.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var directory = Directory.CreateTempSubdirectory("ss-outbound-");
        try
        {
            var acl = Path.Combine(directory.FullName, "server.acl");
            File.WriteAllText(acl, "[reject_all]\n[white_list]\n127.0.0.2\n");
            var config = Path.Combine(directory.FullName, "local.json");
            await using var destination = new EchoDestination();
            using var udpEcho = new UdpEchoDestination(IPAddress.Loopback);
            var environment = new Dictionary<string, string>();
            var (server, serverAt) = await HostProcess.StartAsync(environment,
                "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "outbound", "-m", "aes-256-gcm", "--forbidden-ip", "", "--acl", acl);
            using var _ = server;
            File.WriteAllText(config, $$"""
                { "server": "127.0.0.1", "server_port": {{serverAt.Port}}, "local_address": "127.0.0.1", "local_port": {{LoopbackPorts.Next()}},
                  "password": "outbound", "method": "aes-256-gcm", "mode": "tcp_and_udp", "outbound_bind_addr": "127.0.0.2" }
                """);
            var (local, localAt) = await HostProcess.StartAsync(environment, "local", "-c", config);
            using var __ = local;
            Assert.DoesNotContain("outbound_bind_addr", local.Output); // a known key: no warning

            await Transfer.EchoThroughSocks5Async(localAt, destination.EndPoint.Port, 2, 8 * 1024, cancel.Token);
            using var association = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
            await association.SendAsync("127.0.0.1", udpEcho.EndPoint.Port, "datagram"u8, cancel.Token);
            Assert.Equal("datagram", Encoding.ASCII.GetString(await association.ReceiveAsync(cancel.Token)));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AnInterfaceThatDoesNotExist_IsRefusedAtStart()
    {
        var error = new StringWriter();
        var code = await Program.RunAsync(
            ["local", "-s", "127.0.0.1", "-p", "8388", "-l", Port(LoopbackPorts.Next()), "-i", "nosuch0", "-k", "outbound", "-m", "aes-256-gcm"],
            new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Equal("shadowsocks: -i: no network interface 'nosuch0' on this machine (ip link lists them)", error.ToString().TrimEnd());
    }

    [Fact]
    public async Task AnInterfaceThatDoesNotExist_GivenWithRustsKey_IsRefusedNamingThatKey()
    {
        var config = Path.GetTempFileName();
        try
        {
            File.WriteAllText(config, """{ "outbound_bind_interface": "nosuch0" }""");
            var error = new StringWriter();
            var code = await Program.RunAsync(
                ["local", "-s", "127.0.0.1", "-p", "8388", "-l", Port(LoopbackPorts.Next()), "-c", config, "-k", "outbound", "-m", "aes-256-gcm"],
                new StringWriter(), error, CancellationToken.None);
            Assert.Equal(2, code);
            Assert.Equal($"shadowsocks: outbound_bind_interface: in {config}, no network interface 'nosuch0' on this machine (ip link lists them)", error.ToString().TrimEnd());
        }
        finally
        {
            File.Delete(config);
        }
    }
}
