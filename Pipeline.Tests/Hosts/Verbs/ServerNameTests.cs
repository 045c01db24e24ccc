using System.Globalization;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>The program with its server given by name (<c>-s localhost</c>): looked up by its own resolver, relayed.</summary>
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

        for (var i = 0; i < 3; i++)
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            using var ___ = socket;
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 64 * 1024, cancel.Token);
        }
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);
}
