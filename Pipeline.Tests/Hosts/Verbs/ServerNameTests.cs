using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>The program with its server given by name: looked up by its own resolver (TCP and UDP), relayed.</summary>
public sealed class ServerNameTests
{
    [Fact]
    public async Task Local_WithTheServerGivenByName_Relays()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        var environment = new Dictionary<string, string>();
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "by-name", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-s", "localhost", "-p", Port(serverAt.Port), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "by-name", "-m", "aes-256-gcm");
        using var __ = local;

        // The start line names the server as given, not DnsEndPoint's "Unspecified/localhost:PORT".
        Assert.Contains($"shadowsocks local (SOCKS5) via localhost:{serverAt.Port} listening on", local.Output, StringComparison.Ordinal);

        for (var i = 0; i < 3; i++)
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            using var ___ = socket;
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 64 * 1024, cancel.Token);
        }
    }

    [Fact]
    public async Task LocalWithUdp_LooksTheServerNameUpThroughItsOwnResolver_AndRelaysDatagrams()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var dnsmasq = new DnsmasqFixture(); // only it knows web.test: the system resolver would not find it
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var environment = new Dictionary<string, string>();
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "by-name", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-u", "-s", DnsmasqFixture.Web, "-p", Port(serverAt.Port), "-d", $"127.0.0.1:{Port(dnsmasq.Port)}",
            "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "by-name", "-m", "aes-256-gcm");
        using var __ = local;

        using var client = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
        var payload = RandomNumberGenerator.GetBytes(700);
        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
        Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
    }

    [Fact]
    public async Task TunnelWithUdp_FollowsTheServerNameToItsNewAddress_WithinItsTtl()
    {
        // The UDP side looked the name up once, at start, and kept the address: a server on a dynamic DNS name lost
        // UDP when its address changed, until a restart, while TCP followed it. Two servers on one port, at the
        // name's old and new address; the old one stops as the name moves.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dnsmasq = new DnsmasqFixture(localTtl: 1);
        dnsmasq.SetHosts("127.0.0.2 moving.test");
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var environment = new Dictionary<string, string>();
        var port = Port(LoopbackPorts.Next());
        var (before, _) = await HostProcess.StartAsync(environment, "server", "-U", "-s", "127.0.0.2", "-p", port, "-k", "moving", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var _ = before;
        var (after, _) = await HostProcess.StartAsync(environment, "server", "-U", "-s", "127.0.0.3", "-p", port, "-k", "moving", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var __ = after;
        var (tunnel, tunnelAt) = await HostProcess.StartAsync(environment,
            "tunnel", "-U", "-s", "moving.test", "-p", port, "-d", $"127.0.0.1:{Port(dnsmasq.Port)}", "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()),
            "-L", $"127.0.0.1:{Port(echo.EndPoint.Port)}", "-k", "moving", "-m", "aes-256-gcm");
        using var ___ = tunnel;
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        await client.SendToAsync("one"u8.ToArray(), SocketFlags.None, tunnelAt, cancel.Token);
        Assert.Equal("one"u8.ToArray(), await DatagramsFrom.TryReceiveAsync(client, tunnelAt, TimeSpan.FromSeconds(30)));

        await before.StopAsync(TimeSpan.FromSeconds(30));
        dnsmasq.SetHosts("127.0.0.3 moving.test");

        // From the same client (its NAT entry was made for the old address), until a datagram is answered: only the
        // server at the new address can answer.
        byte[]? answer = null;
        for (var i = 0; answer is null; i++)
        {
            Assert.False(cancel.IsCancellationRequested, "no answer through the server at the name's new address within 60 s"); // bounds a failure only
            var ask = System.Text.Encoding.ASCII.GetBytes($"two-{i}");
            await client.SendToAsync(ask, SocketFlags.None, tunnelAt, cancel.Token);
            answer = await DatagramsFrom.TryReceiveAsync(client, tunnelAt, TimeSpan.FromSeconds(1));
        }

        Assert.StartsWith("two-", System.Text.Encoding.ASCII.GetString(answer), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LocalWithUdp_AndAFirstServerWhoseNameDoesNotResolve_UsesTheNextForUdp_AndSaysSo()
    {
        // With -u the first server's name was looked up at start and, not found, stopped the program, even though the
        // next server resolves and TCP would go through it.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var dnsmasq = new DnsmasqFixture();
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var environment = new Dictionary<string, string>();
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "fallback", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-u", "-s", "nobody.test", "-s", $"127.0.0.1:{Port(serverAt.Port)}", "-p", Port(serverAt.Port), "-d", $"127.0.0.1:{Port(dnsmasq.Port)}",
            "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "fallback", "-m", "aes-256-gcm");
        using var __ = local;

        Assert.True(await local.WaitForOutputAsync(
            $"udp: cannot look up the server nobody.test: no such name (NXDOMAIN from 127.0.0.1:{Port(dnsmasq.Port)})", TimeSpan.FromSeconds(30)), local.Output);
        Assert.Contains($"UDP goes to the next server that resolves, 127.0.0.1:{Port(serverAt.Port)}", local.Output, StringComparison.Ordinal);
        Assert.Contains($"shadowsocks local (SOCKS5) via nobody.test:{Port(serverAt.Port)} (then 127.0.0.1:{Port(serverAt.Port)}) listening on", local.Output, StringComparison.Ordinal); // every server, in order
        using var client = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
        var payload = RandomNumberGenerator.GetBytes(300);
        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
        Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
    }

    [Fact]
    public async Task LocalWithUdp_AndANameNobodyKnows_StopsWithOneLineNamingIt()
    {
        using var dnsmasq = new DnsmasqFixture();
        var error = new StringWriter();
        var code = await Program.RunAsync(
            ["local", "-u", "-s", "nobody.test", "-p", "8388", "-d", $"127.0.0.1:{Port(dnsmasq.Port)}", "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()),
             "-k", "by-name", "-m", "aes-256-gcm"],
            new StringWriter(), error, CancellationToken.None);
        Assert.Equal(1, code);
        Assert.StartsWith($"shadowsocks: cannot look up the server nobody.test: no such name (NXDOMAIN from 127.0.0.1:{Port(dnsmasq.Port)})", error.ToString());
    }

    [Fact]
    public async Task Local_WithTheServerGivenByName_NamesItAsGiven_WhenItCannotBeReached()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serverPort = LocalServerRelayTests.FreeClosedPort(); // nothing listens there
        var (local, localAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "local", "-s", "localhost", "-p", Port(serverPort), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "by-name", "-m", "aes-256-gcm", "-v");
        using var _ = local;

        var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", 80, cancel.Token);
        socket.Dispose();
        Assert.Equal(5, reply); // connection refused
        Assert.True(await local.WaitForOutputAsync($"cannot connect to server localhost:{serverPort}:", TimeSpan.FromSeconds(10)), local.Output);
        Assert.DoesNotContain("Unspecified/", local.Output, StringComparison.Ordinal);
    }
}
