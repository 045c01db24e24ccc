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

        using var exporter = new OtlpJsonFileExporter("/dev/full", "shadowsocks");
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
