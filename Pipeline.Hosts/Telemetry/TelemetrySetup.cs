using OpenTelemetry;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// Wires the pipeline's ActivitySource to exporters: OTLP (to Jaeger or a collector) when the standard
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> variable is set, and OTLP/JSON files under a traces folder when asked.
/// Shutdown is bounded so that a hung collector cannot hold the process.
/// </summary>
internal sealed class TelemetrySetup : IDisposable
{
    /// <summary>How long shutdown may wait for exporters to flush.</summary>
    private const int ShutdownTimeoutMilliseconds = 1000;

    private readonly TracerProvider? _provider;

    private TelemetrySetup(TracerProvider? provider, string? traceFile)
    {
        _provider = provider;
        TraceFile = traceFile;
    }

    /// <summary>The OTLP/JSON file spans are written to, if any.</summary>
    public string? TraceFile { get; }

    public static TelemetrySetup Start(string serviceRole, string? tracesDirectory)
    {
        var otlpEndpoint = Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT");
        if (string.IsNullOrEmpty(otlpEndpoint) && tracesDirectory is null)
        {
            return new TelemetrySetup(null, null);
        }

        var builder = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService("shadowsocks", serviceInstanceId: $"{serviceRole}-{Environment.ProcessId}"))
            .AddSource(PipelineTelemetry.Name);
        if (!string.IsNullOrEmpty(otlpEndpoint))
        {
            builder.AddOtlpExporter();
        }

        string? file = null;
        if (tracesDirectory is not null)
        {
            file = Path.Combine(tracesDirectory, $"shadowsocks-{serviceRole}-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.json");
            builder.AddProcessor(new BatchActivityExportProcessor(new OtlpJsonFileExporter(file, "shadowsocks"), scheduledDelayMilliseconds: 1000));
        }

        return new TelemetrySetup(builder.Build(), file);
    }

    public void Dispose()
    {
        _provider?.Shutdown(ShutdownTimeoutMilliseconds);
        _provider?.Dispose();
    }
}
