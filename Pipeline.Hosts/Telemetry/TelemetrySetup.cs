using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Hosts.Logging;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// Wires the pipeline's ActivitySource and Meter to exporters: OTLP (to Jaeger or a collector) when the
/// <c>telemetry</c> section or the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> variable names an endpoint, and
/// OTLP/JSON trace files under a folder when asked. Shutdown is bounded so that a hung collector cannot hold the process;
/// a collector that does not take the exports is said at the default level (<see cref="Logging.FailureWarning.TelemetryExport"/>),
/// and the final flush's failures in one line (<see cref="Stop"/>).
/// </summary>
internal sealed class TelemetrySetup : IDisposable
{
    /// <summary>How long shutdown may wait for exporters to flush, per provider.</summary>
    private const int ShutdownTimeoutMilliseconds = 500;

    private readonly TracerProvider? _tracer;
    private readonly MeterProvider? _meter;
    private bool _stopped;

    private TelemetrySetup(TracerProvider? tracer, MeterProvider? meter, string? traceFile, string? otlp)
    {
        _tracer = tracer;
        _meter = meter;
        TraceFile = traceFile;
        OtlpDescription = otlp;
    }

    /// <summary>The OTLP/JSON file spans are written to, if any.</summary>
    public string? TraceFile { get; }

    /// <summary>Where OTLP goes, for the start-up line; <c>null</c> when not exported.</summary>
    public string? OtlpDescription { get; }

    /// <summary>
    /// The runtime's own meter (.NET 9 and later): <c>dotnet.gc.*</c> (heap size, collections, pauses),
    /// <c>dotnet.process.*</c> (CPU time, working set), <c>dotnet.thread_pool.*</c> (threads, queue length), exported beside
    /// the pipeline's, so memory and CPU can be read against the relay's own figures.
    /// </summary>
    internal const string RuntimeMeter = "System.Runtime";

    public static TelemetrySetup Start(string serviceRole, TelemetrySettings settings)
    {
        var environmentEndpoint = Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT");
        var otlp = settings.OtlpEndpoint is not null || !string.IsNullOrEmpty(environmentEndpoint);
        if (!otlp && settings.TracesDirectory is null)
        {
            return new TelemetrySetup(null, null, null, null);
        }

        var resource = ResourceBuilder.CreateDefault().AddService("shadowsocks", serviceInstanceId: $"{serviceRole}-{Environment.ProcessId}");
        var tracing = Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource(PipelineTelemetry.Name);
        MeterProvider? meter = null;
        string? description = null;
        if (otlp)
        {
            tracing.AddOtlpExporter(o => Configure(o, settings, "v1/traces"));
            meter = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(PipelineTelemetry.Name, RuntimeMeter)
                .AddOtlpExporter((o, reader) =>
                {
                    Configure(o, settings, "v1/metrics");
                    reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 10_000;
                })
                .Build();
            description = settings.OtlpEndpoint?.ToString() ?? environmentEndpoint;
        }

        string? file = null;
        if (settings.TracesDirectory is { } directory)
        {
            file = Path.Combine(directory, $"shadowsocks-{serviceRole}-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.json");
            tracing.AddProcessor(new BatchActivityExportProcessor(new OtlpJsonFileExporter(file, "shadowsocks", TimeProvider.System), scheduledDelayMilliseconds: 1000));
        }

        return new TelemetrySetup(tracing.Build(), meter, file, description);
    }

    /// <summary>
    /// Flushes the exporters and stops them (bounded: <see cref="ShutdownTimeoutMilliseconds"/> per provider), and says
    /// on <paramref name="log"/>, in one warning however many there were, the exports of that final flush that failed
    /// (<c>pipeline.telemetry_export_failures</c>, <c>pipeline.trace_file_failures</c>) or that did not finish in time:
    /// the process ends next, and they were said nowhere. The caller has stopped the running warnings
    /// (<see cref="Logging.FailureWarning"/>) of those counters, so that they are not said twice.
    /// </summary>
    public void Stop(ILogger log)
    {
        if (_stopped || (_tracer is null && _meter is null))
        {
            return;
        }

        var gate = new Lock();
        var failed = 0L;
        string? latest = null;
        void Failed(Instrument instrument, long count, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
        {
            var detail = CounterDetail.Current ?? CounterListener.Tag(tags, TagNames.Reason);
            lock (gate)
            {
                failed += count;
                latest = detail ?? latest;
            }
        }

        bool flushed;
        using (CounterListener.Start("pipeline.telemetry_export_failures", Failed))
        using (CounterListener.Start("pipeline.trace_file_failures", Failed))
        {
            flushed = Shutdown();
        }

        lock (gate)
        {
            var late = flushed ? "" : $"; and the flush did not finish within {ShutdownTimeoutMilliseconds} ms (a collector that does not answer?)";
            if (failed > 0)
            {
                log.LogWarning("{Line}", $"telemetry at exit: {failed} {(failed == 1 ? "export" : "exports")} of the final flush failed, {(failed == 1 ? "its" : "their")} spans or metrics are lost; the latest: {latest}{late}");
            }
            else if (!flushed)
            {
                log.LogWarning("{Line}", $"telemetry at exit: the final flush did not finish within {ShutdownTimeoutMilliseconds} ms (a collector that does not answer?); what it had not sent is lost");
            }
        }
    }

    /// <summary>Stops the exporters as <see cref="Stop"/> does, saying nothing.</summary>
    public void Dispose() => Shutdown();

    /// <summary>Flushes and stops each provider once, bounded; false when a flush did not finish in time.</summary>
    private bool Shutdown()
    {
        if (_stopped)
        {
            return true;
        }

        _stopped = true;
        var flushed = _tracer?.Shutdown(ShutdownTimeoutMilliseconds) ?? true;
        _tracer?.Dispose();
        flushed &= _meter?.Shutdown(ShutdownTimeoutMilliseconds) ?? true;
        _meter?.Dispose();
        return flushed;
    }

    /// <summary>
    /// The config section's endpoint and protocol win over the OTEL_* variables; a programmatic http endpoint needs its
    /// signal path. Exports the collector does not take are counted (<see cref="ExportFailureHandler"/>), for the
    /// default-level warning.
    /// </summary>
    private static void Configure(OtlpExporterOptions options, TelemetrySettings settings, string signalPath)
    {
        options.HttpClientFactory = ExportFailureHandler.Around(options.HttpClientFactory, signalPath["v1/".Length..]);
        if (settings.OtlpProtocol is { } protocol)
        {
            options.Protocol = protocol;
        }

        if (settings.OtlpEndpoint is { } endpoint)
        {
            options.Endpoint = options.Protocol == OtlpExportProtocol.HttpProtobuf
                ? new Uri(endpoint, endpoint.AbsolutePath.EndsWith('/') ? signalPath : $"{endpoint.AbsolutePath}/{signalPath}")
                : endpoint;
        }
    }
}
