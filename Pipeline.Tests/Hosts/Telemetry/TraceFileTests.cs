using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Hosts.Telemetry;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Hosts.Telemetry;

/// <summary>
/// The trace files the host writes (the demo's default) as Jaeger's Search → Upload reads them: OTLP/JSON with
/// lowercase hex ids and nanosecond strings; one root span per connection with the stage spans as its children.
/// </summary>
public sealed partial class TraceFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ss-traces-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task TraceFile_IsOtlpJson_WithParentLinksAndStageAttributes()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var first = new EchoDestination();
        await using var second = new EchoDestination();
        string file;
        int serverPort;

        // This test's connections' root spans (two on each side), counted as they end.
        var ports = new[] { first, second }.Select(d => d.EndPoint.Port.ToString(CultureInfo.InvariantCulture)).ToHashSet();
        var rootsEnded = 0;
        using var roots = new ActivityListener
        {
            ShouldListenTo = static source => source.Name == PipelineTelemetry.Name,
            ActivityStopped = a =>
            {
                if (a.ParentSpanId == default && ports.Contains(Convert.ToString(a.GetTagItem(TagNames.ServerPort), CultureInfo.InvariantCulture) ?? ""))
                {
                    Interlocked.Increment(ref rootsEnded);
                }
            },
        };
        ActivitySource.AddActivityListener(roots);
        using (var telemetry = TelemetrySetup.Start("test", new TelemetrySettings(_directory, null, null)))
        {
            file = telemetry.TraceFile!;
            await using var chain = RelayChain.Start("aes-256-gcm");
            serverPort = chain.Server.LocalEndPoint.Port;
            foreach (var destination in new[] { first, second }) // two connections: two traces, neither inside the other
            {
                var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
                using (socket)
                {
                    Assert.Equal(0, reply);
                    await Transfer.EchoRoundTripAsync(socket, 100_000, cancel.Token);
                }
            }

            // The relay spans end when both directions have closed on both sides, and each root span as its session is
            // disposed a moment later: waited for (a fixed 500 ms could pass first on a loaded machine, and the file
            // then lacked them).
            for (var waited = 0; Volatile.Read(ref rootsEnded) < 4 && waited < 1000; waited++)
            {
                await Task.Delay(20, cancel.Token);
            }
        } // disposing flushes the batch processor into the file

        var spans = new List<JsonElement>();
        foreach (var line in File.ReadLines(file).Where(l => l.Length > 0))
        {
            using var document = JsonDocument.Parse(line);
            foreach (var resourceSpans in document.RootElement.GetProperty("resourceSpans").EnumerateArray())
            {
                // The provider's resource: the service, and the role and process that tell a local's file from its server's.
                var resource = resourceSpans.GetProperty("resource").GetProperty("attributes").EnumerateArray()
                    .ToDictionary(a => a.GetProperty("key").GetString()!, a => a.GetProperty("value").GetProperty("stringValue").GetString());
                Assert.Equal("shadowsocks", resource["service.name"]);
                Assert.Equal($"test-{Environment.ProcessId}", resource.GetValueOrDefault("service.instance.id"));
                foreach (var scopeSpans in resourceSpans.GetProperty("scopeSpans").EnumerateArray())
                {
                    Assert.Equal("Shadowsocks.Pipeline", scopeSpans.GetProperty("scope").GetProperty("name").GetString());
                    spans.AddRange(scopeSpans.GetProperty("spans").EnumerateArray().Select(s => s.Clone()));
                }
            }
        }

        foreach (var span in spans)
        {
            Assert.Matches(TraceId(), span.GetProperty("traceId").GetString());
            Assert.Matches(SpanId(), span.GetProperty("spanId").GetString());
            var start = ulong.Parse(span.GetProperty("startTimeUnixNano").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            var end = ulong.Parse(span.GetProperty("endTimeUnixNano").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(end, start, start + 120_000_000_000UL);
        }

        // This test's connections, on each side: the root span whose server.port is the destination's.
        var traceIds = new HashSet<string>();
        foreach (var destination in new[] { first, second })
        foreach (var (root, stages) in new[]
        {
            ("local connection", new[] { "wait_for_bytes", "socks5.handshake", "connect", "add_header", "relay.upstream", "relay.downstream" }),
            ("server connection", new[] { "wait_for_bytes", "read_header", "connect", "relay.upstream", "relay.downstream" }),
        })
        {
            var rootSpan = Assert.Single(spans, s => s.GetProperty("name").GetString() == root
                && Attribute(s, "server.port") == destination.EndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.False(rootSpan.TryGetProperty("parentSpanId", out var noParent) && noParent.GetString()!.Length > 0, $"{root} must be a root span");
            Assert.Equal("tcp", Attribute(rootSpan, "network.transport"));
            Assert.Equal("127.0.0.1", Attribute(rootSpan, "server.address"));
            Assert.NotNull(Attribute(rootSpan, "network.peer.address"));

            var traceId = rootSpan.GetProperty("traceId").GetString()!;
            Assert.True(traceIds.Add(traceId), $"{root} shares trace {traceId} with another connection");
            var children = spans.Where(s => s.GetProperty("traceId").GetString() == traceId && s.TryGetProperty("parentSpanId", out var p) && p.GetString()!.Length > 0).ToList();
            Assert.All(children, c => Assert.Equal(rootSpan.GetProperty("spanId").GetString(), c.GetProperty("parentSpanId").GetString()));
            foreach (var stage in stages)
            {
                // One span per stage, also when a header or a handshake comes in pieces (its waits make one wait_for_bytes).
                var child = Assert.Single(children, c => c.GetProperty("name").GetString() == stage);
                Assert.Equal(stage, Attribute(child, "pipeline.stage"));
                var tuning = stage == "wait_for_bytes" ? "^-1$" : "^[1-9][0-9]*$"; // unbounded: max_connections bounds it
                Assert.Matches(tuning, Attribute(child, "pipeline.stage.max_parallelism"));
                Assert.Matches(tuning, Attribute(child, "pipeline.stage.bounded_capacity"));
                if (stage == "connect")
                {
                    // Where the socket went, as the semantic conventions split it: an address alone, and its port (the
                    // local's span had the server's "127.0.0.1:port" as the address, and no port).
                    var port = root == "local connection" ? serverPort : destination.EndPoint.Port;
                    Assert.Equal("127.0.0.1", Attribute(child, "network.peer.address"));
                    Assert.Equal(port.ToString(CultureInfo.InvariantCulture), Attribute(child, "network.peer.port"));
                }

                                if (stage.StartsWith("relay.", StringComparison.Ordinal))
                {
                    // A direction's span stands for its per-connection stages: the cipher stage's tuning and the forward stage's.
                    Assert.Contains(Attribute(child, "pipeline.cipher_stage"), new[] { "encrypt", "decrypt" });
                    Assert.Matches("^[1-9][0-9]*$", Attribute(child, "pipeline.forward.max_parallelism"));
                    Assert.Matches("^[1-9][0-9]*$", Attribute(child, "pipeline.forward.bounded_capacity"));
                }
            }

            // Each direction's span counts its bytes: at least the 100,000 echoed (plus framing on the encrypted side).
            Assert.All(children.Where(c => c.GetProperty("name").GetString()!.StartsWith("relay.", StringComparison.Ordinal)),
                c => Assert.InRange(long.Parse(Attribute(c, "pipeline.bytes")!, System.Globalization.CultureInfo.InvariantCulture), 100_000, 200_000));
        }
    }

    /// <summary>
    /// A disk that is full (here /dev/full, which fails every write with ENOSPC) loses the batch, which is counted as
    /// <c>disk_full</c>, the error naming the file going to the default-level warning alone (a file's name is no
    /// metric's label); the exporter does not throw (it did, on the batch processor's thread, and the
    /// process ended: a server whose trace folder filled up stopped relaying).
    /// </summary>
    [Fact]
    public void Export_OnAFullDisk_DropsTheBatchAndCountsIt_WithoutThrowing()
    {
        var reasons = new List<(string Reason, string? Detail)>();
        using var failures = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = static (instrument, listener) =>
            {
                if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == "pipeline.trace_file_failures")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        failures.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == TagNames.Reason)
                {
                    lock (reasons)
                    {
                        reasons.Add((Convert.ToString(tag.Value, CultureInfo.InvariantCulture)!, CounterDetail.Current));
                    }
                }
            }
        });
        failures.Start();

        using var exporter = new OtlpJsonFileExporter("/dev/full", "shadowsocks", TimeProvider.System);
        using var span = new Activity("full disk").Start();
        span.Stop();
        var result = exporter.Export(new OpenTelemetry.Batch<Activity>([span], 1));

        Assert.Equal(OpenTelemetry.ExportResult.Failure, result);
        lock (reasons)
        {
            // Matched by the detail: other tests' trace files may fail meanwhile.
            var (reason, _) = Assert.Single(reasons, r => r.Detail?.Contains("/dev/full", StringComparison.Ordinal) == true);
            Assert.Equal("disk_full", reason);
            Assert.DoesNotContain(reasons, r => r.Reason.Contains('/', StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// A trace file that logrotate renames away (without <c>copytruncate</c>; with <c>create</c> it puts an empty file
    /// at the path), or that is deleted, is reopened at its path at the first batch a second or more after the last
    /// check: the spans go to the file the path names, not, for as long as the process runs, to the renamed or
    /// unlinked one. Within the second, the batch still goes to the file that is open.
    /// </summary>
    [Theory]
    [InlineData("renamed")]
    [InlineData("renamed, created")]
    [InlineData("deleted")]
    public void AFileRenamedAwayOrDeleted_IsReopenedAtItsPath_WithinASecond(string rotation)
    {
        var clock = new Core.Scheduling.ManualTimeProvider();
        var path = Path.Combine(_directory, "shadowsocks-test-rotated.json");
        var rotated = path + ".1";
        using var exporter = new OtlpJsonFileExporter(path, "shadowsocks", clock);
        Assert.Equal(OpenTelemetry.ExportResult.Success, ExportOne(exporter, "before"));

        if (rotation == "deleted")
        {
            File.Delete(path);
        }
        else
        {
            File.Move(path, rotated);
            if (rotation == "renamed, created")
            {
                File.WriteAllBytes(path, []);
            }
        }

        clock.Advance(OtlpJsonFileExporter.CheckInterval - TimeSpan.FromMilliseconds(1));
        Assert.Equal(OpenTelemetry.ExportResult.Success, ExportOne(exporter, "not yet checked"));
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(OpenTelemetry.ExportResult.Success, ExportOne(exporter, "after"));
        Assert.Equal(OpenTelemetry.ExportResult.Success, ExportOne(exporter, "after, again"));

        Assert.Equal(["after", "after, again"], SpanNames(path));
        if (rotation != "deleted")
        {
            Assert.Equal(["before", "not yet checked"], SpanNames(rotated));
        }
    }

    /// <summary>
    /// The real server: its trace file renamed away while it runs, the spans of the connections that follow are in a
    /// new file at the path (they went on into the renamed file before).
    /// </summary>
    [Fact]
    public async Task ARunningServersTraceFile_RenamedAway_GetsTheNewSpansInANewFileAtItsPath()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await using var destination = new EchoDestination();
        using var chain = await Hosts.HostChain.StartAsync(new Dictionary<string, string>(), "rotated", serverArgs: ["--traces", _directory]);
        Assert.True(await chain.Server.WaitForOutputAsync(" (Jaeger UI", TimeSpan.FromSeconds(30)), chain.Server.Output);
        var line = chain.Server.Output.Split('\n').Single(static l => l.StartsWith("traces: ", StringComparison.Ordinal));
        var file = line["traces: ".Length..line.IndexOf(" (Jaeger UI", StringComparison.Ordinal)];

        await ConnectUntilAsync(chain, destination, () => HasServerSpan(file), cancel.Token);
        var rotated = file + ".1";
        File.Move(file, rotated);

        await ConnectUntilAsync(chain, destination, () => HasServerSpan(file), cancel.Token);
        Assert.True(HasServerSpan(rotated)); // the spans before the rename stay in the renamed file

        static bool HasServerSpan(string path) =>
            File.Exists(path) && File.ReadAllText(path).Contains("\"server connection\"", StringComparison.Ordinal);
    }

    /// <summary>Relays one connection after another through the chain until <paramref name="done"/> holds (a failure after 45 s).</summary>
    private static async Task ConnectUntilAsync(Hosts.HostChain chain, EchoDestination destination, Func<bool> done, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(45), $"not there after 45 s; server output:\n{chain.Server.Output}");
            var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.LocalAt, "127.0.0.1", destination.EndPoint.Port, cancellationToken);
            using (socket)
            {
                Assert.Equal(0, reply);
                await Transfer.EchoRoundTripAsync(socket, 1000, cancellationToken);
            }

            // The batch goes out a second after its spans end: looked for a few times before the next connection.
            for (var i = 0; i < 30 && !done(); i++)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    private static OpenTelemetry.ExportResult ExportOne(OtlpJsonFileExporter exporter, string name)
    {
        using var span = new Activity(name).Start();
        span.Stop();
        return exporter.Export(new OpenTelemetry.Batch<Activity>([span], 1));
    }

    /// <summary>The spans' names in a trace file, line by line.</summary>
    private static string[] SpanNames(string file) =>
    [
        .. File.ReadLines(file).Where(l => l.Length > 0).SelectMany(line =>
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.GetProperty("resourceSpans").EnumerateArray()
                .SelectMany(r => r.GetProperty("scopeSpans").EnumerateArray())
                .SelectMany(s => s.GetProperty("spans").EnumerateArray())
                .Select(s => s.GetProperty("name").GetString()!)
                .ToArray();
        }),
    ];

    /// <summary>An attribute's value as text (OTLP/JSON writes 64-bit integers as strings).</summary>
    private static string? Attribute(JsonElement span, string key)
    {
        foreach (var attribute in span.GetProperty("attributes").EnumerateArray())
        {
            if (attribute.GetProperty("key").GetString() == key)
            {
                var value = attribute.GetProperty("value");
                return value.TryGetProperty("stringValue", out var s) ? s.GetString()
                    : value.TryGetProperty("intValue", out var i) ? i.GetString()
                    : value.ToString();
            }
        }

        return null;
    }

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex TraceId();

    [GeneratedRegex("^[0-9a-f]{16}$")]
    private static partial Regex SpanId();
}
