using System.Net;
using OpenTelemetry.Exporter;

namespace Shadowsocks.Pipeline.Hosts.Configuration;

/// <summary>
/// The <c>telemetry</c> section: <c>traces</c> (a folder for OTLP/JSON trace files, also <c>--traces</c>),
/// <c>otlp_endpoint</c> and <c>otlp_protocol</c> (grpc or http/protobuf), and <c>metrics_listen</c> (<c>--metrics</c>:
/// where to serve Prometheus's <c>GET /metrics</c>; null: nowhere). The standard
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> / <c>OTEL_EXPORTER_OTLP_PROTOCOL</c> variables are honoured when the section
/// names no endpoint.
/// </summary>
internal sealed record TelemetrySettings(string? TracesDirectory, Uri? OtlpEndpoint, OtlpExportProtocol? OtlpProtocol, IPEndPoint? MetricsListen = null);
