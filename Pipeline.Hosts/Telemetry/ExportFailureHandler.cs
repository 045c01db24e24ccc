using System.Globalization;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Stages.Connect;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// Sits in the OTLP exporter's <see cref="HttpClient"/> and counts each export the collector did not take in
/// <c>pipeline.telemetry_export_failures</c>, by a fixed reason (<c>refused</c>, <c>timed_out</c>, <c>lookup_failed</c>,
/// <c>unreachable</c>, <c>tls</c>, <c>protocol</c>, <c>http_4xx</c> and the other classes, <c>grpc_error</c>,
/// <c>other</c>); the signal, the endpoint and the error's name go to the default-level warning only, as the
/// measurement's <see cref="CounterDetail"/> (an endpoint is no metric's label). Each request goes on, copied, through the client the exporter would have made itself (its
/// timeout, no redirects, the certificates of <c>OTEL_EXPORTER_OTLP_CERTIFICATE</c> and the like), so export is as
/// before.
/// </summary>
/// <remarks>
/// Here rather than in a <see cref="OpenTelemetry.BaseExporter{T}"/> around the exporter: a wrapped exporter never gets
/// the provider (<c>ParentProvider</c> is set only by the SDK, on the exporter it was given), so its batches went out
/// without the resource (<c>service.name</c>); and an <see cref="OpenTelemetry.ExportResult"/> carries no reason. The
/// exporter's EventSource has the reason but is compiled out of the Native AOT build (<c>EventSourceSupport</c> is off
/// there by default). The exporter fails the export on what is counted here: an exception (a refused or timed-out
/// connection, TLS), an HTTP status other than 2xx, and a gRPC error status; a gRPC error sent in the trailers after a
/// body (not in the headers alone, as collectors answer a wrong path or an overload) is not seen.
/// </remarks>
internal sealed class ExportFailureHandler : HttpMessageHandler
{
    /// <summary>gRPC's status codes by number (grpc/doc/statuscodes.md).</summary>
    private static readonly string[] GrpcStatusNames =
    [
        "OK", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted",
        "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
    ];

    /// <summary>TLS with the collector failed (a certificate, a handshake).</summary>
    private const string Tls = "tls";

    /// <summary>The collector's answer was not the HTTP the exporter speaks (gRPC to an HTTP/1.1 port, a closed stream).</summary>
    private const string Protocol = "protocol";

    /// <summary>A gRPC error status in the answer's headers.</summary>
    private const string GrpcError = "grpc_error";

    /// <summary>Anything else (not expected).</summary>
    private const string Other = "other";

    private readonly HttpClient _inner;
    private readonly string _signal;

    /// <param name="inner">The client the exporter's own factory made; disposed with this handler.</param>
    /// <param name="signal"><c>traces</c> or <c>metrics</c>, for the reason.</param>
    public ExportFailureHandler(HttpClient inner, string signal)
    {
        _inner = inner;
        _signal = signal;
    }

    /// <summary>
    /// Wraps <paramref name="factory"/> (the exporter's own): the client it makes sends, behind a client whose only
    /// part is this handler (no timeout of its own: the inner one's applies; the exporter's cancel on shutdown reaches
    /// the inner request through the token).
    /// </summary>
    public static Func<HttpClient> Around(Func<HttpClient> factory, string signal) =>
        () => new HttpClient(new ExportFailureHandler(factory(), signal)) { Timeout = Timeout.InfiniteTimeSpan };

    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = _inner.Send(Copy(request), cancellationToken);
        }
        catch (Exception e)
        {
            Failed(request, e, cancellationToken);
            throw;
        }

        return Checked(request, response);
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _inner.SendAsync(Copy(request), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Failed(request, e, cancellationToken);
            throw;
        }

        return Checked(request, response);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>
    /// The request again, for the inner client: a client sends a request message once (the outer one has marked it
    /// sent). The content is the same object; the exporter disposes it with its request.
    /// </summary>
    private static HttpRequestMessage Copy(HttpRequestMessage request)
    {
        var copy = new HttpRequestMessage(request.Method, request.RequestUri)
        {
            Version = request.Version,
            VersionPolicy = request.VersionPolicy,
            Content = request.Content,
        };
        foreach (var (name, values) in request.Headers)
        {
            copy.Headers.TryAddWithoutValidation(name, values);
        }

        return copy;
    }

    private HttpResponseMessage Checked(HttpRequestMessage request, HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
        {
            Count(request, $"http_{(int)response.StatusCode / 100}xx", $"HTTP {(int)response.StatusCode} {response.StatusCode}");
        }
        else if (response.Headers.TryGetValues("grpc-status", out var values) && values.FirstOrDefault() is { } status && status != "0")
        {
            // A trailers-only answer: the status in the headers, no body.
            var name = int.TryParse(status, NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code < GrpcStatusNames.Length ? GrpcStatusNames[code] : status;
            Count(request, GrpcError, $"gRPC status {name}");
        }

        return response;
    }

    private void Failed(HttpRequestMessage request, Exception e, CancellationToken cancellationToken)
    {
        if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            return; // The exporter cancelled it (shutting down): not the collector's doing.
        }

        // The warning's words: an error's name where it has one, not its message.
        var why = e switch
        {
            HttpRequestException { InnerException: SocketException socket } => socket.SocketErrorCode.ToString(),
            HttpRequestException { HttpRequestError: not HttpRequestError.Unknown } http => http.HttpRequestError.ToString(),
            HttpRequestException http => http.Message,
            OperationCanceledException => $"no answer within {_inner.Timeout.TotalSeconds:0} s",
            _ => e.GetType().Name,
        };
        Count(request, Reason(e), why);
    }

    /// <summary>
    /// A failed request's reason, one of a fixed few: a socket error as a server's connect failure is tagged
    /// (<see cref="ServerConnectFailure"/>: refused, timed_out, lookup_failed, unreachable), else the kind of
    /// <see cref="HttpRequestError"/>, a timeout, or <c>other</c>.
    /// </summary>
    private static string Reason(Exception e) => e switch
    {
        HttpRequestException { InnerException: SocketException socket } => ServerConnectFailure.Of(socket),
        HttpRequestException { HttpRequestError: HttpRequestError.NameResolutionError } => DestinationFailure.LookupFailed,
        HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } => DestinationFailure.Unreachable,
        HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError } => Tls,
        HttpRequestException
        {
            HttpRequestError: HttpRequestError.HttpProtocolError or HttpRequestError.InvalidResponse or HttpRequestError.ResponseEnded or HttpRequestError.VersionNegotiationError,
        } => Protocol,
        OperationCanceledException => DestinationFailure.TimedOut,
        _ => Other,
    };

    /// <summary>Counts a failed export by <paramref name="reason"/>; the warning reads the signal, the endpoint and <paramref name="why"/>.</summary>
    private void Count(HttpRequestMessage request, string reason, string why) =>
        CounterDetail.Add(PipelineTelemetry.TelemetryExportFailures, $"{_signal} to {Shown(request.RequestUri)}: {why}", new KeyValuePair<string, object?>(TagNames.Reason, reason));

    /// <summary>The endpoint as the warning shows it: without a <c>user:password@</c> it may carry.</summary>
    internal static string? Shown(Uri? endpoint) =>
        endpoint is { UserInfo.Length: > 0 } ? new UriBuilder(endpoint) { UserName = "", Password = "" }.Uri.ToString() : endpoint?.ToString();
}
