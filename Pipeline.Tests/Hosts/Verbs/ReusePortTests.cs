using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// <c>--reuse-port</c>: a second server on the same port (TCP and UDP) starts while the first runs, and serves once the
/// first has stopped; without it the second is refused.
/// </summary>
public sealed class ReusePortTests
{
    [Fact]
    public async Task TwoServersShareThePort_AndTheSecondServesAfterTheFirstStops()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var environment = new Dictionary<string, string>();
        var port = Port(LoopbackPorts.Next());
        string[] server = ["server", "-u", "-s", "127.0.0.1", "-p", port, "-k", "reuse", "-m", "aes-256-gcm", "--forbidden-ip", "", "--reuse-port"];
        var (old, oldAt) = await HostProcess.StartAsync(environment, server);
        using var _ = old;
        var (next, nextAt) = await HostProcess.StartAsync(environment, server);
        using var __ = next;
        Assert.Equal(oldAt.Port, nextAt.Port);

        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-s", "127.0.0.1", "-p", port, "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "reuse", "-m", "aes-256-gcm");
        using var ___ = local;
        await EchoAsync(localAt, destination, cancel.Token);

        var (_, exitCode) = await old.StopAsync(TimeSpan.FromSeconds(20)); // the old version goes; the new one has the port
        Assert.Equal(0, exitCode);
        for (var i = 0; i < 3; i++)
        {
            await EchoAsync(localAt, destination, cancel.Token);
        }
    }

    [Fact]
    public async Task Without_ASecondServerOnThePort_StopsWithAddressInUse()
    {
        var port = Port(LoopbackPorts.Next());
        string[] server = ["server", "-s", "127.0.0.1", "-p", port, "-k", "reuse", "-m", "aes-256-gcm"];
        var (first, _) = await HostProcess.StartAsync(new Dictionary<string, string>(), server);
        using var _ = first;

        // (.NET's ReuseAddress option also sets SO_REUSEPORT on Linux: the second used to start and share the port.)
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10)); // ends it if it did start
        var error = new StringWriter();
        Assert.Equal(1, await Program.RunAsync(server, new StringWriter(), error, stop.Token));
        Assert.StartsWith($"shadowsocks: cannot listen on 127.0.0.1:{port}: address already in use", error.ToString());
    }

    private static async Task EchoAsync(System.Net.IPEndPoint proxy, EchoDestination destination, CancellationToken cancellationToken)
    {
        var (socket, reply) = await Socks5TestClient.ConnectAsync(proxy, "127.0.0.1", destination.EndPoint.Port, cancellationToken);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 16 * 1024, cancellationToken);
    }
}
