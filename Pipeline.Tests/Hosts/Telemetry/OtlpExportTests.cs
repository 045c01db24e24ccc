using System.Net;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Hosts.Telemetry;

/// <summary>
/// The host's OTLP export, end to end: the real program sends its stage spans to a loopback OTLP/HTTP receiver; with
/// no collector at all, relaying is unaffected and shutdown is bounded.
/// </summary>
public sealed class OtlpExportTests
{
    [Fact]
    public async Task StageSpans_ReachAnOtlpHttpReceiver()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var receiver = new OtlpReceiver();
        await using var destination = new EchoDestination();
        using var chain = await HostChain.StartAsync(OtlpTo(receiver.Endpoint), "otlp");
        var (server, local, localAt) = (chain.Server, chain.Local, chain.LocalAt);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using (socket)
        {
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 64 * 1024, cancel.Token);
        }

        await Task.Delay(500, cancel.Token);
        var (localStop, localExit) = await local.StopAsync(TimeSpan.FromSeconds(10));
        var (serverStop, serverExit) = await server.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, localExit);
        Assert.Equal(0, serverExit);

        var posts = receiver.Posts;
        Assert.All(posts, p => Assert.Contains(p.Path, new[] { "/v1/traces", "/v1/metrics" }));
        var traces = Encoding.UTF8.GetString([.. posts.Where(p => p.Path == "/v1/traces").SelectMany(p => p.Body)]);
        foreach (var name in new[] { "socks5.handshake", "add_header", "read_header", "connect", "relay.upstream", "relay.downstream", "pipeline.stage.max_parallelism" })
        {
            Assert.Contains(name, traces, StringComparison.Ordinal);
        }

        // The meter's instruments are exported too (at the latest by the flush on shutdown).
        var metrics = Encoding.UTF8.GetString([.. posts.Where(p => p.Path == "/v1/metrics").SelectMany(p => p.Body)]);
        foreach (var name in new[] { "pipeline.bytes_relayed", "pipeline.read_budget.in_flight", "pipeline.read_budget.busy", "dotnet.gc.heap.total_allocated", "dotnet.process.cpu.time" })
        {
            Assert.Contains(name, metrics, StringComparison.Ordinal); // the pipeline's meter, and the runtime's beside it
        }

        Assert.True(localStop < TimeSpan.FromSeconds(5) && serverStop < TimeSpan.FromSeconds(5), $"stops took {localStop} and {serverStop}");
        Assert.DoesNotContain("cannot export", local.Output + server.Output, StringComparison.Ordinal); // every export was taken
    }

    [Fact]
    public async Task NoCollector_RelayUnaffected_ShutdownWithinTwoSeconds()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        using var chain = await HostChain.StartAsync(OtlpTo($"http://127.0.0.1:{LoopbackPorts.Next()}"), "otlp"); // nothing listens there
        var (server, local, localAt) = (chain.Server, chain.Local, chain.LocalAt);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using (socket)
        {
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 1 << 20, cancel.Token);
        }

        var (took, exit) = await local.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, exit);
        Assert.True(took < TimeSpan.FromSeconds(2), $"shutdown took {took}");
        (took, exit) = await server.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, exit);
        Assert.True(took < TimeSpan.FromSeconds(2), $"shutdown took {took}");
    }

    /// <summary>The standard OTLP/HTTP variables pointing both hosts at <paramref name="endpoint"/>, exporting every 200 ms.</summary>
    private static Dictionary<string, string> OtlpTo(string endpoint) => new()
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
    };

    /// <summary>A loopback OTLP/HTTP receiver: records each POST's path and body and answers 200.</summary>
    private sealed class OtlpReceiver : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly List<(string Path, byte[] Body)> _posts = [];

        public OtlpReceiver()
        {
            var port = LoopbackPorts.Next();
            Endpoint = $"http://127.0.0.1:{port}";
            _listener.Prefixes.Add($"{Endpoint}/");
            _listener.Start();
            _ = Task.Run(LoopAsync);
        }

        public string Endpoint { get; }

        public IReadOnlyList<(string Path, byte[] Body)> Posts
        {
            get
            {
                lock (_posts)
                {
                    return [.. _posts];
                }
            }
        }

        public void Dispose() => _listener.Close();

        private async Task LoopAsync()
        {
            try
            {
                while (_listener.IsListening)
                {
                    var context = await _listener.GetContextAsync();
                    using var body = new MemoryStream();
                    await context.Request.InputStream.CopyToAsync(body);
                    lock (_posts)
                    {
                        _posts.Add((context.Request.Url!.AbsolutePath, body.ToArray()));
                    }

                    context.Response.StatusCode = 200;
                    context.Response.ContentType = "application/x-protobuf";
                    context.Response.Close();
                }
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                // Stopped.
            }
        }
    }
}
