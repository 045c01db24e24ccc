using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Connect;

/// <summary>
/// Connects to a destination given as an IPv4-mapped IPv6 address (ATYP 4, <c>::ffff:a.b.c.d</c>): a client may send
/// one, and ss-libev reaches it (an AF_INET6 socket with IPV6_V6ONLY off). .NET opens IPv6 sockets IPv6-only, so a
/// connect to the mapped address failed with host unreachable, on the local's direct route and on the server alike.
/// </summary>
public sealed class ConnectStageTests
{
    private static readonly IPAddress s_mappedLoopback = IPAddress.Parse("::ffff:127.0.0.1");

    [Fact]
    public async Task ToDestination_AnIPv4MappedAddress_OnTheLocalsDirectRoute_IsReached()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        Assert.True(AccessControlList.TryParse("[bypass_all]\n", out var acl, out var error), error);
        var options = RelayChain.Options("aes-256-gcm", "x", new IPEndPoint(IPAddress.Loopback, 0), new IPEndPoint(IPAddress.Loopback, LocalServerRelayTests.FreeClosedPort()))
            with { Acl = acl, ConnectRetries = 0 };
        await using var local = new LocalTcpRelay(options, ProgramScheduler.Instance, TimeProvider.System, routeNames: new SystemDnsResolver());
        local.Start();

        await AssertEchoesAsync(local.LocalEndPoint, destination.EndPoint.Port, cancel.Token);
    }

    [Fact]
    public async Task ToDestination_AnIPv4MappedAddress_ThroughTheServer_IsReached()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm");

        await AssertEchoesAsync(chain.Local.LocalEndPoint, destination.EndPoint.Port, cancel.Token);
    }

    [Fact]
    public async Task ToServer_AServerGivenAsAnIPv4MappedAddress_IsReached()
    {
        // A local given -s ::ffff:127.0.0.1 (or a server name whose AAAA record is a mapped address) failed every
        // connection with NetworkUnreachable; ss-local reaches it.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        await using var server = new ServerTcpRelay(
            RelayChain.Options("aes-256-gcm", "x", new IPEndPoint(IPAddress.Loopback, 0)), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var options = RelayChain.Options("aes-256-gcm", "x", new IPEndPoint(IPAddress.Loopback, 0), new IPEndPoint(s_mappedLoopback, server.LocalEndPoint.Port))
            with { ConnectRetries = 0 };
        await using var local = new LocalTcpRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();

        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 4096, cancel.Token);
    }

    private static async Task AssertEchoesAsync(IPEndPoint proxy, int port, CancellationToken cancellationToken)
    {
        var (socket, reply) = await Socks5TestClient.ConnectAsync(proxy, s_mappedLoopback.ToString(), port, cancellationToken);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 4096, cancellationToken);
    }
}
