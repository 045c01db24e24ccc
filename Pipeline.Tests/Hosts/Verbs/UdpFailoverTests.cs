using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Hosts.Telemetry.PrometheusScrape;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>A local or tunnel with several servers: its UDP follows the server TCP finds working.</summary>
public sealed class UdpFailoverTests
{
    private const string MovedAway = "pipeline_udp_server_moves_total{pipeline_direction=\"away\"}";

    [Fact]
    public async Task LocalWithTwoServers_TheFirstStopped_UdpGoesToTheSecondOnceTcpSkipsTheFirst_SaysSo_AndCountsIt()
    {
        // UDP stayed with the first server for as long as the program ran, though TCP had gone on to the second. Then
        // the move was only said, in a line: no metric to alert on.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        using var servers = await TwoUdpServers.StartAsync("aes-256-gcm", "udp-failover");
        var metrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var (local, localAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            ["local", "-u", .. servers.ServerArgs, "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "udp-failover", "-m", "aes-256-gcm",
             "--metrics", metrics.ToString()]);
        using var _ = local;
        Assert.True(await local.WaitForOutputAsync($"metrics: http://{metrics}/metrics", Deadline), local.Output);
        using var http = new HttpClient { Timeout = Deadline };

        using var client = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
        var payload = RandomNumberGenerator.GetBytes(300);
        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
        Assert.Equal(payload, await client.ReceiveAsync(cancel.Token)); // through the first
        Assert.Null(Value(await http.GetStringAsync(Url(metrics), cancel.Token), MovedAway)); // no move yet

        await servers.First.StopAsync(TimeSpan.FromSeconds(30));
        await servers.UntilMovedAsync(local, () => ConnectThroughLocalAsync(localAt, destination.EndPoint.Port, cancel.Token), cancel.Token);

        // Through the same association: only the second server can answer now.
        var answer = await TwoUdpServers.UntilAnsweredAsync(
            () => client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token), () => client.TryReceiveAsync(TimeSpan.FromSeconds(1)), cancel.Token);
        Assert.Equal(payload, answer);
        Assert.Equal(1, CountOf(local.Output, servers.MovedLine)); // once per outage, not per connection
        Assert.Contains($"server 127.0.0.1:{Port(servers.FirstAt.Port)} failed (", local.Output, StringComparison.Ordinal); // TCP's own line, beside it

        // The move, counted once, by direction only (never the servers: the labels stay bounded).
        var scraped = await UntilAsync(http, metrics, t => Value(t, MovedAway) is not null, cancel.Token);
        Assert.Equal(1, Value(scraped, MovedAway));
        Assert.Null(Value(scraped, "pipeline_udp_server_moves_total{pipeline_direction=\"back\"}"));
        Assert.Single(scraped.Split('\n'), l => l.StartsWith("pipeline_udp_server_moves_total", StringComparison.Ordinal));
    }

    private static async Task ConnectThroughLocalAsync(IPEndPoint localAt, int port, CancellationToken cancellationToken)
    {
        var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", port, cancellationToken);
        socket.Dispose();
        Assert.Equal(0, reply); // through the second
    }

    private static int CountOf(string text, string line)
    {
        var count = 0;
        for (var at = text.IndexOf(line, StringComparison.Ordinal); at >= 0; at = text.IndexOf(line, at + line.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
