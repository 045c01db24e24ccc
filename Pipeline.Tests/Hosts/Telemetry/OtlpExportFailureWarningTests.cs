using System.Net;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

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
}
