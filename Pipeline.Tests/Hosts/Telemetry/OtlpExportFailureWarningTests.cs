using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Telemetry;

/// <summary>
/// An OTLP endpoint where no collector listens is said at the default level, naming the endpoint and the error, once
/// for the failed exports of traces and metrics that follow; relaying goes on. The metric counts them by a fixed reason,
/// never by the endpoint.
/// </summary>
public sealed class OtlpExportFailureWarningTests
{
    [Theory]
    [InlineData("http/protobuf")]
    [InlineData("grpc")] // the exporter's default protocol
    public async Task AClosedCollectorPort_GetsOneWarningLine_NamingTheEndpoint(string protocol)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var closedPort = LoopbackPorts.Next(); // nothing listens there
        var environment = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{closedPort}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol,
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        };
        var metricsAt = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        using var chain = await HostChain.StartAsync(environment, "otlp-down", localArgs: ["--metrics", metricsAt.ToString()]);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.LocalAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using (socket)
        {
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 4096, cancel.Token);
        }

        // The connection's spans are exported within the batch delay, and fail at once; the deadline only bounds a failure.
        var expected = ": ConnectionRefused; check telemetry.otlp_endpoint";
        Assert.True(await chain.Local.WaitForOutputAsync(expected, TimeSpan.FromSeconds(45)), chain.Local.Output);
        Assert.True(await chain.Server.WaitForOutputAsync(expected, TimeSpan.FromSeconds(45)), chain.Server.Output);

        // Scraped: by reason alone; the endpoint and the error's name are the warning's (an unbounded label before).
        using (var http = new HttpClient { Timeout = PrometheusScrape.Deadline })
        {
            var scraped = await PrometheusScrape.UntilAsync(http, metricsAt,
                static t => PrometheusScrape.Value(t, "pipeline_telemetry_export_failures_total{pipeline_reason=\"refused\"}") >= 1, cancel.Token);
            var series = scraped.Split('\n').Where(static l => l.StartsWith("pipeline_telemetry_export_failures_total{", StringComparison.Ordinal)).ToArray();
            Assert.All(series, static l => Assert.Matches("^pipeline_telemetry_export_failures_total\\{pipeline_reason=\"[a-z0-9_]+\"\\} ", l));
        }

        var (_, exit) = await chain.Local.StopAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(0, exit);

        // Metrics fail too (every 10 s) and later batches of spans: counted into the next line, a minute later at most.
        var line = Assert.Single(chain.Local.Output.Split('\n'), static l => l.Contains("cannot export", StringComparison.Ordinal));
        Assert.Contains(" WARN: ", line, StringComparison.Ordinal);
        Assert.Matches($"cannot export (traces|metrics) to http://127\\.0\\.0\\.1:{closedPort}/[^ ]+: ConnectionRefused; check telemetry\\.otlp_endpoint", line);
    }

    /// <summary>
    /// The exports of the final flush at SIGTERM (the spans held back, the metrics' last export) that fail are said in
    /// one line, however many, before the process's last line; they were said nowhere before (the running warning had
    /// stopped listening, and may not write a second line within its minute anyway).
    /// </summary>
    [Fact]
    public async Task ExportsFailingInTheFinalFlush_AreSaidInOneLine_BeforeStopped()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var closedPort = LoopbackPorts.Next(); // nothing listens there
        var environment = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{closedPort}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "600000", // the spans go out only in the final flush
        };
        using var chain = await HostChain.StartAsync(environment, "otlp-down-at-exit");

        var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.LocalAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using (socket)
        {
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 4096, cancel.Token);
        }

        var (_, exit) = await chain.Local.StopAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, exit);

        var lines = chain.Local.Output.Split('\n');
        AssertFinalFlushLine(chain.Local.Output, closedPort);
        Assert.True(Array.FindIndex(lines, static l => l.Contains("telemetry at exit:", StringComparison.Ordinal)) < Array.FindLastIndex(lines, static l => l.TrimEnd().EndsWith("stopped", StringComparison.Ordinal)),
            chain.Local.Output);
    }

    /// <summary>
    /// A start that fails once telemetry is set up (here the relay's port is taken) flushes it all the same and says
    /// the failed flush (the metrics' last export) in its one line; it ended in silence before, the flush's failures
    /// said nowhere.
    /// </summary>
    [Fact]
    public async Task AStartThatFails_AfterTelemetryIsSetUp_StillSaysTheFinalFlush()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var closedPort = LoopbackPorts.Next();
        using var server = HostProcess.Launch(null, Collector(closedPort), "server", "-s", "127.0.0.1", "-p", Port(port), "-k", "final-flush", "-m", "aes-256-gcm");

        Assert.Equal(1, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains($"shadowsocks: cannot listen on 127.0.0.1:{port}: address already in use", server.Output, StringComparison.Ordinal);
        AssertFinalFlushLine(server.Output, closedPort);
    }

    /// <summary>
    /// A <c>--metrics</c> address that cannot be listened on is a settings error (exit 2): its one line and nothing else.
    /// It was refused once telemetry was set up, so the exit flushed telemetry and said the failed flush too.
    /// </summary>
    [Fact]
    public async Task ARefusedMetricsAddress_IsOneLine_NothingAboutTheFlush()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var metricsAt = (IPEndPoint)taken.LocalEndpoint;
        var closedPort = LoopbackPorts.Next();
        using var server = HostProcess.Launch(null, Collector(closedPort),
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "usage-error", "-m", "aes-256-gcm", "--metrics", metricsAt.ToString());

        Assert.Equal(2, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var line = Assert.Single(server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith($"shadowsocks: --metrics: cannot listen on {metricsAt}: address already in use", line, StringComparison.Ordinal);
    }

    /// <summary>
    /// A SIP003 plugin that dies takes the relay with it; that exit flushes telemetry too and says the failed flush in
    /// its one line (before, the process stopped without it).
    /// </summary>
    [Fact]
    public async Task ThePluginDies_TheRelayStops_AndSaysTheFinalFlush()
    {
        var closedPort = LoopbackPorts.Next();
        var (server, _) = await HostProcess.StartAsync(Collector(closedPort),
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "final-flush", "-m", "aes-256-gcm", "--plugin", "obfs-server", "--plugin-opts", "obfs=http");
        using var _ = server;
        using (var plugin = Process.GetProcessById(Assert.Single(ProcessTree.Children(server.Id))))
        {
            plugin.Kill();
        }

        Assert.Equal(1, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("shadowsocks: plugin obfs-server exited with code 137; stopping", server.Output, StringComparison.Ordinal);
        AssertFinalFlushLine(server.Output, closedPort);
    }

    /// <summary>OTLP over HTTP to a loopback port where no collector listens; spans only in the final flush.</summary>
    private static Dictionary<string, string> Collector(int closedPort) => new()
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{closedPort}",
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "600000",
    };

    /// <summary>One default-level line for the final flush, naming the closed port's refusal or the flush's bound.</summary>
    internal static void AssertFinalFlushLine(string output, int closedPort)
    {
        var line = Assert.Single(output.Split('\n'), static l => l.Contains("telemetry at exit:", StringComparison.Ordinal));
        Assert.Contains(" WARN: ", line, StringComparison.Ordinal);
        // On a loaded machine the flush's first request (the HTTP stack not yet compiled) can outlast the 500 ms
        // bound: then the line says that too, or only that.
        const string Late = "flush did not finish within 500 ms \\(a collector that does not answer\\?\\)";
        Assert.True(
            Regex.IsMatch(line.TrimEnd(), $"telemetry at exit: ([0-9]+ exports? of the final flush failed, (its|their) spans or metrics are lost; the latest: (traces|metrics) to http://127\\.0\\.0\\.1:{closedPort}/v1/(traces|metrics): ConnectionRefused(; and the {Late})?|the final {Late}; what it had not sent is lost)$"),
            output);
    }
}
