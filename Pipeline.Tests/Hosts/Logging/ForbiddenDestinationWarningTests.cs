using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// A first test through a server often asks for a loopback destination, which the default <c>forbidden_ip</c> refuses:
/// the client sees only a closed connection, so the server says why at the default level, once for a burst.
/// </summary>
public sealed class ForbiddenDestinationWarningTests
{
    [Fact]
    public async Task ALoopbackDestination_UnderTheDefaultForbiddenList_GetsOneWarningLine()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        var environment = new Dictionary<string, string> { ["SHADOWSOCKS_PASSWORD"] = "forbidden" };
        var (server, serverAt) = await HostProcess.StartAsync(environment, "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-m", "aes-256-gcm");
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(environment, "local", "-s", "127.0.0.1", "-p", Port(serverAt.Port), "-l", Port(LoopbackPorts.Next()), "-m", "aes-256-gcm");
        using var __ = local;

        for (var i = 0; i < 2; i++)
        {
            var (socket, _) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            using (socket)
            {
                await socket.SendAsync(new byte[] { 1, 2, 3 }, cancel.Token);
                Assert.Empty(await Socks5TestClient.ReadUntilClosedAsync(socket, cancel.Token)); // closed by the server, nothing relayed
            }
        }

        Assert.True(await server.WaitForOutputAsync("forbidden destination", TimeSpan.FromSeconds(10)), server.Output);
        await server.StopAsync(TimeSpan.FromSeconds(15));
        var line = Assert.Single(server.Output.Split('\n'), static l => l.Contains("forbidden destination", StringComparison.Ordinal)); // the second is counted
        Assert.Contains(" WARN: ", line, StringComparison.Ordinal);
        Assert.Contains("--forbidden-ip", line, StringComparison.Ordinal);
        Assert.Equal(0, destination.Accepted);
    }
}
