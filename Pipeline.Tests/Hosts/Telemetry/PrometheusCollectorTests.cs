using System.Diagnostics.Metrics;
using Shadowsocks.Pipeline.Hosts.Telemetry;

namespace Shadowsocks.Pipeline.Tests.Hosts.Telemetry;

/// <summary>
/// The exposition's text: names with their unit and <c>_total</c>, labels from the tags with backslash, quote and
/// line feed escaped, one series per set of tags whatever their order, and each instrument kind as its Prometheus
/// type. A meter of its own per test (listeners are process-wide).
/// </summary>
public sealed class PrometheusCollectorTests
{
    [Fact]
    public void Scrape_NamesUnitsLabelsAndTypes_AsTheTextFormatWantsThem()
    {
        var name = $"Test.Prometheus.{Guid.NewGuid():N}";
        using var meter = new Meter(name);
        using var collector = new PrometheusCollector(name);
        var requests = meter.CreateCounter<long>("test.requests", "{request}", "Requests,\nwith a \\ in \"help\".");
        var sent = meter.CreateCounter<long>("test.sent", "By");
        var open = meter.CreateUpDownCounter<int>("test.open", "{connection}");
        var wait = meter.CreateHistogram<double>("test.wait", "s");
        meter.CreateObservableGauge("test.level", static () => 0.5, "1");
        meter.CreateCounter<long>("test.untouched", "{thing}");

        const string Odd = "a \"quoted\" back\\slash\nand a new line";
        requests.Add(2, new("reason", Odd), new("test.side", "client"));
        requests.Add(3, new("test.side", "client"), new("reason", Odd)); // the same tags in another order: the same series
        requests.Add(1, new KeyValuePair<string, object?>("test.side", "remote"));
        sent.Add(10);
        open.Add(3);
        open.Add(-1);
        wait.Record(0.25);
        wait.Record(0.5);

        var text = collector.Scrape();

        Assert.Contains("# HELP test_requests_total Requests,\\nwith a \\\\ in \"help\".\n# TYPE test_requests_total counter\n", text);
        Assert.Contains("test_requests_total{reason=\"a \\\"quoted\\\" back\\\\slash\\nand a new line\",test_side=\"client\"} 5\n", text);
        Assert.Contains("test_requests_total{test_side=\"remote\"} 1\n", text);
        Assert.Contains("# TYPE test_sent_bytes_total counter\ntest_sent_bytes_total 10\n", text);
        Assert.Contains("# TYPE test_open gauge\ntest_open 2\n", text);
        Assert.Contains("# TYPE test_wait_seconds histogram\ntest_wait_seconds_bucket{le=\"+Inf\"} 2\ntest_wait_seconds_sum 0.75\ntest_wait_seconds_count 2\n", text);
        Assert.Contains("# TYPE test_level_ratio gauge\ntest_level_ratio 0.5\n", text);
        Assert.Contains("# TYPE test_untouched_total counter\ntest_untouched_total 0\n", text); // a series from the start
        Assert.All(text.Split('\n', StringSplitOptions.RemoveEmptyEntries), line =>
            Assert.Matches("^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\",?)+\\})? [^ ]+)$", line));
    }
}
