using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>A server with the default forbidden list never connects to its own loopback, by address or by name.</summary>
public sealed class ForbiddenDestinationTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    [InlineData("0.0.0.0")] // the unspecified address reaches loopback
    public async Task ForbiddenDestination_IsNeverReached_AllowedOneIs(string host)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var destination = new EchoDestination();
        var loopback = new IPEndPoint(IPAddress.Loopback, 0);
        var serverOptions = RelayChain.Options("aes-256-gcm", "pw", loopback) with { Forbidden = ForbiddenAddresses.Default };
        await using var server = new ServerTcpRelay(serverOptions, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        await using var local = new LocalTcpRelay(RelayChain.Options("aes-256-gcm", "pw", loopback, server.LocalEndPoint), ProgramScheduler.Instance, TimeProvider.System);
        local.Start();

        var (socket, _) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, host, destination.EndPoint.Port, cancel.Token);
        using (socket)
        {
            await socket.SendAsync(RandomNumberGenerator.GetBytes(1000), SocketFlags.None, cancel.Token);
            var rest = await Socks5TestClient.ReadUntilClosedAsync(socket, cancel.Token); // the server closes: nothing relayed
            Assert.Empty(rest);
        }

        Assert.Equal(0, destination.Accepted);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("0.0.0.0")] // the unspecified address reaches loopback
    public async Task ForbiddenUdpDestination_IsDropped(string host)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var serverOptions = RelayChain.Options("aes-256-gcm", "pw", new IPEndPoint(IPAddress.Loopback, 0)) with { Forbidden = ForbiddenAddresses.Default };
        await using var server = UdpRelayChain.StartServer(serverOptions);
        var (udp, tcp) = UdpRelayChain.StartLocal(RelayChain.Options("aes-256-gcm", "pw", new IPEndPoint(IPAddress.Loopback, 0), server.LocalEndPoint), server.LocalEndPoint);
        await using var _ = udp;
        await using var __ = tcp;
        using var client = await Socks5UdpTestClient.AssociateAsync(tcp.LocalEndPoint, cancel.Token);
        await client.SendAsync(host, echo.EndPoint.Port, "never"u8, cancel.Token);
        Assert.Null(await client.TryReceiveAsync(TimeSpan.FromMilliseconds(500)));
        Assert.Equal(0, echo.Received);
    }
}
