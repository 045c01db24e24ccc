using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary><c>shadowsocks demo</c> as a real process.</summary>
public sealed partial class DemoVerbTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ss-demo-traces-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>
    /// A trace file the disk cannot take is said by the demo as by the relays: one default-level warning naming the
    /// error and the file (the demo counted the failures and had no logger to say them). The full disk is /dev/full
    /// (ENOSPC on every write), put at the file's path while the demo runs, which the exporter reopens within a second.
    /// </summary>
    [Fact]
    public async Task ATraceFileOnAFullDisk_IsSaidInTheRelaysLine()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        await using var destination = new EchoDestination();
        using var demo = HostProcess.Launch(null, new Dictionary<string, string>(), "demo", "--traces", _directory);
        Assert.True(await demo.WaitForOutputAsync("demo: Ctrl-C to stop", TimeSpan.FromSeconds(90)), demo.Output); // after the 64 MiB self-check
        var socks = IPEndPoint.Parse(ProxyAt().Match(demo.Output).Groups[1].Value);
        var file = TracesTo().Match(demo.Output).Groups[1].Value;

        File.Delete(file);
        File.CreateSymbolicLink(file, "/dev/full");

        // Connections until the warning: the first batch a second after the swap meets the full disk.
        const string Line = "cannot write traces: No space left on device : '";
        var clock = Stopwatch.StartNew();
        while (!demo.Output.Contains(Line, StringComparison.Ordinal))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(45), $"no warning after 45 s:\n{demo.Output}");
            var (socket, reply) = await Socks5TestClient.ConnectAsync(socks, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            using (socket)
            {
                Assert.Equal(0, reply);
                await Transfer.EchoRoundTripAsync(socket, 1000, cancel.Token);
            }

            await demo.WaitForOutputAsync(Line, TimeSpan.FromSeconds(3));
        }

        var (_, exit) = await demo.StopAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, exit);
        var warning = Assert.Single(demo.Output.Split('\n'), static l => l.Contains("cannot write traces:", StringComparison.Ordinal));
        Assert.Contains(" WARN: ", warning, StringComparison.Ordinal);
        Assert.Matches("cannot write traces: No space left on device : '[^']+'; their spans are dropped and the relay goes on; free space there or give --traces \\(telemetry.traces\\) another folder; later failures: one line a minute at most$", warning.TrimEnd());
    }

    /// <summary>
    /// The demo stops as the relays do: the final flush's line (here its exports to a collector that is not there),
    /// then its last line, <c>demo: stopped</c>. The flush's line came after it.
    /// </summary>
    [Fact]
    public async Task Stopped_IsTheLastLine_AfterTheFinalFlushsLine()
    {
        var closedPort = Loopback.LoopbackPorts.Next(); // nothing listens there
        var environment = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{closedPort}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "600000", // the self-check's spans go out only in the final flush
        };
        using var demo = HostProcess.Launch(null, environment, "demo", "--traces", _directory);
        Assert.True(await demo.WaitForOutputAsync("demo: Ctrl-C to stop", TimeSpan.FromSeconds(90)), demo.Output); // after the 64 MiB self-check

        var (_, exit) = await demo.StopAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, exit);
        Telemetry.OtlpExportFailureWarningTests.AssertFinalFlushLine(demo.Output, closedPort);
        var lines = demo.Output.TrimEnd().Split('\n');
        Assert.Equal("demo: stopped", lines[^1].TrimEnd());
        Assert.Contains("telemetry at exit:", lines[^2], StringComparison.Ordinal);
    }

    [GeneratedRegex("demo: SOCKS5 proxy ready at (\\S+)")]
    private static partial Regex ProxyAt();

    [GeneratedRegex("demo: traces of every connection go to (.+) \\(open it in Jaeger")]
    private static partial Regex TracesTo();
}
