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

    [Fact]
    public async Task LocalWithTwoServers_A2022Method_TheFirstStopped_TheClientIsAnsweredThroughTheSecond_InOneNewSession()
    {
        // SIP022: the local's session for a client (its ID, packet counter and the server sessions it has heard) ends with
        // the NAT entries the move closes; the client's next datagrams start a new one, which the second server takes.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var secondMetrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        using var servers = await TwoUdpServers.StartAsync("2022-blake3-aes-256-gcm", key, "--metrics", secondMetrics.ToString());
        Assert.True(await servers.Second.WaitForOutputAsync($"metrics: http://{secondMetrics}/metrics", Deadline), servers.Second.Output);
        var (local, localAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            ["local", "-u", .. servers.ServerArgs, "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", key, "-m", "2022-blake3-aes-256-gcm"]);
        using var _ = local;
        using var http = new HttpClient { Timeout = Deadline };

        using var client = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
        var payload = RandomNumberGenerator.GetBytes(300);
        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
        Assert.Equal(payload, await client.ReceiveAsync(cancel.Token)); // through the first
        Assert.Equal(0, Value(await http.GetStringAsync(Url(secondMetrics), cancel.Token), "pipeline_udp_associations")); // the second has no session yet

        await servers.First.StopAsync(TimeSpan.FromSeconds(30));
        await servers.UntilMovedAsync(local, () => ConnectThroughLocalAsync(localAt, destination.EndPoint.Port, cancel.Token), cancel.Token);

        // The same client, through the same association: the second server answers, in a session of its own for it.
        var answer = await TwoUdpServers.UntilAnsweredAsync(
            () => client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token), () => client.TryReceiveAsync(TimeSpan.FromSeconds(1)), cancel.Token);
        Assert.Equal(payload, answer);
        var second = await http.GetStringAsync(Url(secondMetrics), cancel.Token);
        Assert.Equal(1, Value(second, "pipeline_udp_associations"));
        Assert.Null(Value(second, "pipeline_authentication_failures_total{network_transport=\"udp\"}")); // every packet of the session opened
    }

    [Fact]
    public async Task TunnelWithTwoServers_TheFirstStopped_UdpGoesToTheSecondOnceTcpSkipsTheFirst_AndSaysSo()
    {
        // The tunnel follows TCP's circuits as the local does (RelayVerb's FollowCircuits, on its own relays).
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        using var servers = await TwoUdpServers.StartAsync("aes-256-gcm", "udp-failover");
        var (tunnel, tunnelAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            ["tunnel", "-u", .. servers.ServerArgs, "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-L", $"127.0.0.1:{Port(echo.EndPoint)}",
             "-k", "udp-failover", "-m", "aes-256-gcm"]);
        using var _ = tunnel;
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        await client.SendToAsync("one"u8.ToArray(), SocketFlags.None, tunnelAt, cancel.Token);
        Assert.Equal("one"u8.ToArray(), await DatagramsFrom.TryReceiveAsync(client, tunnelAt, TimeSpan.FromSeconds(20))); // through the first

        await servers.First.StopAsync(TimeSpan.FromSeconds(30));
        await servers.UntilMovedAsync(tunnel, () => ConnectThroughTunnelAsync(tunnelAt, cancel.Token), cancel.Token);

        // From the same client (its NAT entry was the first server's): only the second server can answer now.
        var answer = await TwoUdpServers.UntilAnsweredAsync(
            () => client.SendToAsync("two"u8.ToArray(), SocketFlags.None, tunnelAt, cancel.Token).AsTask(),
            () => DatagramsFrom.TryReceiveAsync(client, tunnelAt, TimeSpan.FromSeconds(1)), cancel.Token);
        Assert.Equal("two"u8.ToArray(), answer);
        Assert.Equal(1, CountOf(tunnel.Output, servers.MovedLine));
        Assert.Contains($"server 127.0.0.1:{Port(servers.FirstAt.Port)} failed (", tunnel.Output, StringComparison.Ordinal); // TCP's own line, beside it
    }

    private static async Task ConnectThroughLocalAsync(IPEndPoint localAt, int port, CancellationToken cancellationToken)
    {
        var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", port, cancellationToken);
        socket.Dispose();
        Assert.Equal(0, reply); // through the second
    }

    /// <summary>
    /// A TCP connection through the tunnel, which opens one to a server, kept until the tunnel ends it (the destination's
    /// TCP port is closed, so the server that took it closes it) or for a few seconds at most.
    /// </summary>
    private static async Task ConnectThroughTunnelAsync(IPEndPoint tunnelAt, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(tunnelAt, cancellationToken);
        await socket.SendAsync("x"u8.ToArray(), SocketFlags.None, cancellationToken);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            _ = await socket.ReceiveAsync(new byte[16], SocketFlags.None, wait.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            // Reset, or still open after the wait: either way the tunnel's attempts are over or under way.
        }
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
