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
/// <c>pipeline.telemetry_export_failures</c> by a fixed reason, with the signal, the endpoint and why as the warning's
/// detail only (never a label); what it takes, or cancels itself on shutdown, is not. The requests go through unchanged.
/// </summary>
public sealed class ExportFailureHandlerTests
{
    [Theory]
    [InlineData("http://user:secret@collector.example:4318/v1/traces", "http://collector.example:4318/v1/traces")]
    [InlineData("http://collector.example:4318/v1/traces", "http://collector.example:4318/v1/traces")]
    public void TheEndpointShown_CarriesNoCredentials(string endpoint, string shown) =>
        Assert.Equal(shown, ExportFailureHandler.Shown(new Uri(endpoint)));

    [Theory]
    [InlineData(HttpStatusCode.OK, null, null, null)]
    [InlineData(HttpStatusCode.NotFound, null, "http_4xx", "HTTP 404 NotFound")]
    [InlineData(HttpStatusCode.ServiceUnavailable, null, "http_5xx", "HTTP 503 ServiceUnavailable")]
    [InlineData(HttpStatusCode.OK, "14", "grpc_error", "gRPC status Unavailable")]
    [InlineData(HttpStatusCode.OK, "0", null, null)]
    public async Task AnAnswer_IsCountedWhenTheExporterWouldFailIt(HttpStatusCode status, string? grpcStatus, string? reason, string? why)
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

        var expected = why is null ? [] : new[] { (reason, $"traces to {endpoint}v1/traces: {why}") };
        Assert.Equal(expected, failures.For(endpoint));
    }

    [Fact]
    public void ARefusedConnection_IsCountedAsRefused_AndStillThrown()
    {
        using var failures = new Failures();
        var endpoint = $"http://127.0.0.1:{LoopbackPorts.Next()}/"; // nothing listens there
        using var client = ExportFailureHandler.Around(static () => new HttpClient(), "metrics")();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{endpoint}v1/metrics") { Content = new ByteArrayContent([1]) };

        Assert.Throws<HttpRequestException>(() => client.Send(request)); // the exporter's synchronous path (http/protobuf)

        Assert.Equal([("refused", $"metrics to {endpoint}v1/metrics: ConnectionRefused")], failures.For(endpoint));
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
        Assert.Equal([("timed_out", $"traces to {endpoint}v1/traces: no answer within 1 s")], failures.For(endpoint));

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

    /// <summary>
    /// The reasons <c>pipeline.telemetry_export_failures</c> is given while this listens, each with the detail its
    /// warning reads (<see cref="CounterDetail"/>).
    /// </summary>
    private sealed class Failures : IDisposable
    {
        private readonly ConcurrentQueue<(string? Reason, string Detail)> _failures = new();
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
                string? reason = null;
                foreach (var tag in tags)
                {
                    if (tag.Key == TagNames.Reason)
                    {
                        reason = tag.Value as string;
                    }
                }

                _failures.Enqueue((reason, CounterDetail.Current ?? ""));
            });
            _listener.Start();
        }

        /// <summary>The failures whose detail names <paramref name="endpoint"/> (other tests' exports may fail meanwhile).</summary>
        public (string? Reason, string Detail)[] For(string endpoint) => [.. _failures.Where(f => f.Detail.Contains(endpoint, StringComparison.Ordinal))];

        public void Dispose() => _listener.Dispose();
    }
}
