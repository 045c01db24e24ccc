using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Hosts.Telemetry;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Hosts.Telemetry;

/// <summary>
/// The handler in the OTLP exporter's client: what the exporter fails an export on is counted in
/// <c>pipeline.telemetry_export_failures</c> with the signal, the endpoint and why; what it takes, or cancels itself
/// on shutdown, is not. The requests go through unchanged.
/// </summary>
public sealed class ExportFailureHandlerTests
{
    [Theory]
    [InlineData("http://user:secret@collector.example:4318/v1/traces", "http://collector.example:4318/v1/traces")]
    [InlineData("http://collector.example:4318/v1/traces", "http://collector.example:4318/v1/traces")]
    public void TheEndpointShown_CarriesNoCredentials(string endpoint, string shown) =>
        Assert.Equal(shown, ExportFailureHandler.Shown(new Uri(endpoint)));

    [Theory]
    [InlineData(HttpStatusCode.OK, null, null)]
    [InlineData(HttpStatusCode.NotFound, null, "HTTP 404 NotFound")]
    [InlineData(HttpStatusCode.OK, "14", "gRPC status Unavailable")]
    [InlineData(HttpStatusCode.OK, "0", null)]
    public async Task AnAnswer_IsCountedWhenTheExporterWouldFailIt(HttpStatusCode status, string? grpcStatus, string? why)
    {
        using var failures = new Failures();
        using var collector = new HttpListener();
        var endpoint = $"http://127.0.0.1:{LoopbackPorts.Next()}/";
        collector.Prefixes.Add(endpoint);
        collector.Start();
        using var client = ExportFailureHandler.Around(static () => new HttpClient(), "traces")();

        var answered = client.PostAsync($"{endpoint}v1/traces", new ByteArrayContent([1, 2, 3]));
        var context = await collector.GetContextAsync().WaitAsync(TimeSpan.FromSeconds(30));
        using (var body = new MemoryStream())
        {
            await context.Request.InputStream.CopyToAsync(body);
            Assert.Equal([1, 2, 3], body.ToArray()); // passed on
        }

        context.Response.StatusCode = (int)status;
        if (grpcStatus is not null)
        {
            context.Response.Headers.Add("grpc-status", grpcStatus);
        }

        context.Response.Close();
        using var response = await answered.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(status, response.StatusCode); // handed back as it came

        var expected = why is null ? [] : new[] { $"traces to {endpoint}v1/traces: {why}" };
        Assert.Equal(expected, failures.For(endpoint));
    }

    [Fact]
    public void ARefusedConnection_IsCountedByItsSocketError_AndStillThrown()
    {
        using var failures = new Failures();
        var endpoint = $"http://127.0.0.1:{LoopbackPorts.Next()}/"; // nothing listens there
        using var client = ExportFailureHandler.Around(static () => new HttpClient(), "metrics")();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{endpoint}v1/metrics") { Content = new ByteArrayContent([1]) };

        Assert.Throws<HttpRequestException>(() => client.Send(request)); // the exporter's synchronous path (http/protobuf)

        Assert.Equal([$"metrics to {endpoint}v1/metrics: ConnectionRefused"], failures.For(endpoint));
    }

    [Fact]
    public async Task NoAnswer_IsCountedAsATimeout_ButACancelByTheExporterIsNot()
    {
        using var failures = new Failures();
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        silent.Listen();
        var endpoint = $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndPoint!).Port}/";
        using var client = ExportFailureHandler.Around(static () => new HttpClient { Timeout = TimeSpan.FromSeconds(1) }, "traces")();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.PostAsync($"{endpoint}v1/traces", new ByteArrayContent([1])));
        Assert.Equal([$"traces to {endpoint}v1/traces: no answer within 1 s"], failures.For(endpoint));

        // Shutdown: the exporter cancels its pending requests.
        using var cancel = new CancellationTokenSource();
        var pending = client.PostAsync($"{endpoint}v1/traces", new ByteArrayContent([1]), cancel.Token);
        using (await silent.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(30)))
        using (await silent.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(30))) // the first request's connection, then this one's
        {
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        }

        Assert.Single(failures.For(endpoint));
    }

    /// <summary>The reasons <c>pipeline.telemetry_export_failures</c> is given while this listens.</summary>
    private sealed class Failures : IDisposable
    {
        private readonly ConcurrentQueue<string> _reasons = new();
        private readonly MeterListener _listener = new();

        public Failures()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == "pipeline.telemetry_export_failures")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == TagNames.Reason && tag.Value is string reason)
                    {
                        _reasons.Enqueue(reason);
                    }
                }
            });
            _listener.Start();
        }

        /// <summary>The reasons naming <paramref name="endpoint"/> (other tests' exports may fail meanwhile).</summary>
        public string[] For(string endpoint) => [.. _reasons.Where(r => r.Contains(endpoint, StringComparison.Ordinal))];

        public void Dispose() => _listener.Dispose();
    }
}
