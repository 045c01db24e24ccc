using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A local or tunnel whose server is given by name looks it up through the program's resolver (here pointed at a
/// real dnsmasq, which alone knows the name) and keeps the answer for its TTL: one query for many connections.
/// </summary>
public sealed class ServerByNameTests
{
    [Fact]
    public async Task Local_LooksTheServerNameUpOnce_ForManyConnections_AndKeepsWorkingWhenTheNameServerIsGone()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var dnsmasq = new DnsmasqFixture();
        using var resolver = new DnsResolver(new DnsResolverOptions { Servers = [dnsmasq.EndPoint] }, ProgramScheduler.Instance, TimeProvider.System);
        await using var destination = new EchoDestination();
        var loopback = new IPEndPoint(IPAddress.Loopback, 0);
        await using var server = new ServerTcpRelay(RelayChain.Options("aes-256-gcm", "named", loopback), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var named = new DnsEndPoint(DnsmasqFixture.Web, server.LocalEndPoint.Port); // web.test: only dnsmasq knows it
        await using var local = new LocalTcpRelay(RelayChain.Options("aes-256-gcm", "named", loopback, named), ProgramScheduler.Instance, TimeProvider.System, serverNames: resolver);
        local.Start();

        var queriesForTheFirst = 0;
        for (var i = 0; i < 5; i++)
        {
            if (i == 1)
            {
                queriesForTheFirst = resolver.QueriesSent;
                Assert.True(queriesForTheFirst > 0, "the name was not looked up through the program's resolver");
            }

            if (i == 3)
            {
                dnsmasq.Dispose(); // from here on only the cache can answer
            }

            var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            using var _ = socket;
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 4096, cancel.Token);
        }

        Assert.Equal(queriesForTheFirst, resolver.QueriesSent); // the later four came from the cache
    }

    [Fact]
    public async Task Tunnel_ThroughANamedServer_Echoes_AndANameNobodyKnows_ClosesTheConnection()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var dnsmasq = new DnsmasqFixture();
        using var resolver = new DnsResolver(new DnsResolverOptions { Servers = [dnsmasq.EndPoint] }, ProgramScheduler.Instance, TimeProvider.System);
        await using var destination = new EchoDestination();
        var loopback = new IPEndPoint(IPAddress.Loopback, 0);
        await using var server = new ServerTcpRelay(RelayChain.Options("aes-256-gcm", "named", loopback), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var target = ShadowsocksAddress.FromEndPoint(destination.EndPoint);

        var known = RelayChain.Options("aes-256-gcm", "named", loopback, new DnsEndPoint(DnsmasqFixture.Web, server.LocalEndPoint.Port)) with { TunnelDestination = target };
        await using (var tunnel = new TunnelRelay(known, ProgramScheduler.Instance, TimeProvider.System, resolver))
        {
            tunnel.Start();
            using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(tunnel.LocalEndPoint, cancel.Token);
            await Transfer.EchoRoundTripAsync(client, 64 * 1024, cancel.Token);
        }

        var unknown = RelayChain.Options("aes-256-gcm", "named", loopback, new DnsEndPoint("nobody.test", server.LocalEndPoint.Port))
            with { TunnelDestination = target, ConnectRetries = 0 };
        await using (var tunnel = new TunnelRelay(unknown, ProgramScheduler.Instance, TimeProvider.System, resolver))
        {
            tunnel.Start();
            using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(tunnel.LocalEndPoint, cancel.Token);
            await client.SendAsync("hello"u8.ToArray(), cancel.Token);

            // No server to reach: the tunnel closes the connection (with "hello" unread, the kernel makes that a reset).
            try
            {
                Assert.Equal(0, await client.ReceiveAsync(new byte[16].AsMemory(), cancel.Token));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
            }
        }
    }
}
