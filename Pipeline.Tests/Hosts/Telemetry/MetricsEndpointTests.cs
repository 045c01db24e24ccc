using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Telemetry;

/// <summary>
/// <c>--metrics ADDR:PORT</c> on the real program: Prometheus scrapes <c>GET /metrics</c> and reads counters that a
/// connection or a datagram moved; another path is 404, another method 405; a value that is not ADDR:PORT, or a port
/// in use, stops the start with one line.
/// </summary>
public sealed partial class MetricsEndpointTests
{
    private static readonly TimeSpan Deadline = PrometheusScrape.Deadline;

    [Fact]
    public async Task Scrape_LocalAndServer_CountAConnectionsBytesEachWay()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await using var destination = new EchoDestination();
        var serverMetrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var localMetrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        using var chain = await HostChain.StartAsync(new Dictionary<string, string>(), "metrics",
            serverArgs: ["--metrics", serverMetrics.ToString()], localArgs: ["--metrics", localMetrics.ToString()]);
        Assert.True(await chain.Local.WaitForOutputAsync($"metrics: http://{localMetrics}/metrics (Prometheus text format)", Deadline), chain.Local.Output);
        using var http = new HttpClient { Timeout = Deadline };

        using (var first = await http.GetAsync(Url(localMetrics), cancel.Token))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("text/plain; version=0.0.4; charset=utf-8", first.Content.Headers.ContentType?.ToString());
            var before = await first.Content.ReadAsStringAsync(cancel.Token);
            Assert.Contains("# TYPE pipeline_bytes_relayed_bytes_total counter\n", before, StringComparison.Ordinal);
            Assert.Equal(0, Value(before, "pipeline_bytes_relayed_bytes_total")); // nothing relayed yet
        }

        var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.LocalAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using (socket)
        {
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 10_000, cancel.Token);
        }

        // A chunk is counted once sent, a moment after the echo may read it: waited for, on each side.
        foreach (var (at, role) in new[] { (localMetrics, "local"), (serverMetrics, "server") })
        {
            var text = await ScrapeUntilAsync(http, at, t =>
                Value(t, "pipeline_bytes_relayed_bytes_total{network_transport=\"tcp\",pipeline_direction=\"relay.upstream\"}") >= 10_000
                && Value(t, "pipeline_bytes_relayed_bytes_total{network_transport=\"tcp\",pipeline_direction=\"relay.downstream\"}") >= 10_000
                && Value(t, $"pipeline_active_connections{{shadowsocks_role=\"{role}\"}}") == 0, cancel.Token);
            Assert.InRange(Value(text, "pipeline_bytes_relayed_bytes_total{network_transport=\"tcp\",pipeline_direction=\"relay.upstream\"}")!.Value, 10_000, 11_000);
            Assert.Equal(0, Value(text, "pipeline_handshake_failures_total"));
        }
    }

    [Fact]
    public async Task Scrape_Server_CountsABadDatagram_OtherPathsAre404_OtherMethods405()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var metrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var (server, serverAt) = await HostProcess.StartAsync(new Dictionary<string, string> { ["SHADOWSOCKS_PASSWORD"] = "metrics-udp" },
            ["server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-m", "aes-256-gcm", "-u", "--metrics", metrics.ToString()]);
        using var _ = server;
        using var http = new HttpClient { Timeout = Deadline };

        var before = await http.GetStringAsync(Url(metrics), cancel.Token);
        Assert.Equal(0, Value(before, "pipeline_udp_dropped_total"));

        // A datagram under another key: dropped, counted by reason.
        using (var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            await udp.SendToAsync(RandomNumberGenerator.GetBytes(100), SocketFlags.None, serverAt, cancel.Token);
        }

        var after = await ScrapeUntilAsync(http, metrics, t => DroppedLine().IsMatch(t), cancel.Token);
        Assert.Equal("authentication failed", DroppedLine().Match(after).Groups[1].Value);
        Assert.Equal(1, Value(after, "pipeline_authentication_failures_total{network_transport=\"udp\"}"));

        foreach (var path in new[] { "/", "/metric", "/metrics/x", "/other?metrics" })
        {
            using var notFound = await http.GetAsync($"http://{metrics}{path}", cancel.Token);
            Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
        }

        using (var posted = await http.PostAsync(Url(metrics), new StringContent("x=1"), cancel.Token))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, posted.StatusCode);
            Assert.Equal(["GET", "HEAD"], posted.Content.Headers.Allow);
        }

        using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, Url(metrics)), cancel.Token);
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.True(head.Content.Headers.ContentLength > 0);
    }

    [Fact]
    public async Task PortInUse_OrNotAddrPort_StopsTheStartWithOneLine()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var relayPort = LoopbackPorts.Next();
        string[] server = ["server", "-s", "127.0.0.1", "-p", Port(relayPort), "-k", "pw", "-m", "aes-256-gcm"];

        var error = new StringWriter();
        Assert.Equal(2, await Program.RunAsync([.. server, "--metrics", taken.LocalEndPoint!.ToString()!], new StringWriter(), error, cancel.Token));
        Assert.Equal(
            $"shadowsocks: --metrics: cannot listen on {taken.LocalEndPoint}: address already in use (another program has that port); give a free port, or leave it out",
            Assert.Single(Lines(error)));

        // Refused before the relay's port opened: it is free for the next start.
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, relayPort));
        }

        error = new StringWriter();
        Assert.Equal(2, await Program.RunAsync([.. server, "--metrics", "9464"], new StringWriter(), error, cancel.Token));
        Assert.Equal("shadowsocks: --metrics: '9464' is not ADDR:PORT to serve Prometheus metrics on; give e.g. 127.0.0.1:9464 or [::1]:9464", Assert.Single(Lines(error)));
    }

    private static string Url(IPEndPoint at) => PrometheusScrape.Url(at);

    private static string[] Lines(StringWriter writer) => writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static double? Value(string exposition, string series) => PrometheusScrape.Value(exposition, series);

    private static Task<string> ScrapeUntilAsync(HttpClient http, IPEndPoint at, Func<string, bool> done, CancellationToken cancellationToken) =>
        PrometheusScrape.UntilAsync(http, at, done, cancellationToken);

    [GeneratedRegex("^pipeline_udp_dropped_total\\{pipeline_reason=\"([^\"]+)\"\\} 1$", RegexOptions.Multiline)]
    private static partial Regex DroppedLine();
}
