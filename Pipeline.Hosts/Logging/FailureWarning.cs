using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// At the default level, the one sign of a failure that the user must mend and that otherwise shows only with
/// <c>-v</c>: a warning when a counter of such failures moves. The first comes at once; later ones at most one line a
/// <see cref="Interval"/>, with the count since the last, so a flood (probes, a server down under a busy browser)
/// cannot flood the log. No timer: a failure after the interval writes the line.
/// <list type="bullet">
/// <item><see cref="Authentication"/>: a peer set up with another password or method (the commonest mistake: the
/// server drains such a client without a word, and its <c>-v</c> line comes only when the drain ends, a timeout
/// later);</item>
/// <item><see cref="ServerUnreachable"/>: a local or tunnel whose server does not answer (a wrong address or port, a
/// name that does not resolve, the server down): its clients get a SOCKS5 error or a closed connection;</item>
/// <item><see cref="Socks5Login"/>: a local with SOCKS5 users (<c>--socks5-auth</c>) refused a client's login (a
/// client set up with another password, or without one; or someone on the LAN trying);</item>
/// <item><see cref="ForbiddenDestination"/>: a server asked for a destination on its forbidden list;</item>
/// <item><see cref="OutOfFiles"/>: the process ran out of file descriptors (accepts put off; connections failed);</item>
/// <item><see cref="TelemetryExport"/>: the OTLP collector is not there or does not take the exports (nothing
/// reaches Jaeger);</item>
/// <item><see cref="TraceFile"/>: the trace file cannot be written (a full disk).</item>
/// </list>
/// </summary>
internal sealed class FailureWarning : IDisposable
{
    /// <summary>The least time between two lines.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Func<string?, string> _first;
    private readonly Func<long, string?, string> _later;
    private readonly LineThrottle _throttle = new();
    private readonly MeterListener _listener;

    /// <param name="instrumentName">
    /// The counter listened to; the detail is the measurement's <see cref="CounterDetail"/> (the free text its tags may not
    /// carry), or else its <see cref="TagNames.Reason"/>, if any.
    /// </param>
    /// <param name="first">The first line, from the failure's detail.</param>
    /// <param name="later">A later line, from the count since the last line and the latest failure's detail.</param>
    public FailureWarning(ILogger logger, TimeProvider time, string instrumentName, Func<string?, string> first, Func<long, string?, string> later)
    {
        _logger = logger;
        _time = time;
        _first = first;
        _later = later;
        _listener = CounterListener.Start(instrumentName, (_, value, tags, _) => Count(value, CounterDetail.Current ?? CounterListener.Tag(tags, TagNames.Reason)));
    }

    /// <summary>Streams or datagrams that failed authentication.</summary>
    public static FailureWarning Authentication(ILogger logger, TimeProvider time) => new(
        logger, time, "pipeline.authentication_failures",
        static _ => "a connection or datagram failed authentication: the other side has another password or method (or it is a probe); later failures: one line a minute at most, -v logs each",
        static (count, _) => $"{count} more connections or datagrams failed authentication since the last such line: another password or method on the other side, or probes");

    /// <summary>Connections the local or tunnel could not open to its server.</summary>
    public static FailureWarning ServerUnreachable(ILogger logger, TimeProvider time) => new(
        logger, time, "pipeline.server_connect_failures",
        static detail => $"{detail}: check the server's address and port (-s, -p) and that it runs; later failures: one line a minute at most, -v logs each",
        static (count, detail) => $"{count} more connections could not reach the server since the last such line; the latest: {detail}");

    /// <summary>
    /// Local with <c>--socks5-auth</c>: SOCKS5 clients refused at login; the detail is the counter's reason (a wrong user
    /// name or password, no username/password offered, a malformed login). Never a password: <c>-v</c> names the client
    /// and the user name it gave.
    /// </summary>
    public static FailureWarning Socks5Login(ILogger logger, TimeProvider time) => new(
        logger, time, "pipeline.socks5.authentication_failures",
        static detail => $"a SOCKS5 client was refused at login: {detail}; check the client's user name and password against --socks5-auth (socks5_auth), -v names each client and user; later ones: one line a minute at most",
        static (count, detail) => $"{count} more SOCKS5 clients refused at login since the last such line; the latest: {detail}");

    /// <summary>Server: requests for a destination on <c>--forbidden-ip</c> (by default loopback: a first test through a server often asks for one).</summary>
    public static FailureWarning ForbiddenDestination(ILogger logger, TimeProvider time) => new(
        logger, time, "pipeline.forbidden_destinations",
        static _ => "a client asked for a forbidden destination and was refused: --forbidden-ip (forbidden_ip) forbids loopback and ::1 by default, -v names each; later ones: one line a minute at most",
        static (count, _) => $"{count} more requests for forbidden destinations (--forbidden-ip) since the last such line");

    /// <summary>
    /// Accepts put off because the process had no descriptor to spare (<c>pipeline.accepts_postponed</c>): the budget
    /// fitted at start kept its own connections within the limit, so something else holds them (another part of the
    /// process, a lowered limit); connections then wait, and outbound ones fail (<c>-v</c>: TooManyOpenSockets). The
    /// counter's reason tells kernel memory (ENOBUFS, ENOMEM: NoBufferSpaceAvailable) apart, which no limit mends.
    /// </summary>
    public static FailureWarning OutOfFiles(ILogger logger, TimeProvider time, ulong openFiles) => new(
        logger, time, "pipeline.accepts_postponed",
        detail => OutOfMemory(detail)
            ? "out of kernel memory for sockets (ENOBUFS): new connections wait; the open-file limit is not the cause; later ones: one line a minute at most"
            : $"out of file descriptors (the open-file limit was {openFiles} at start): new connections wait, and connections out may fail; raise it with -n / \"nofile\" or systemd's LimitNOFILE=; later ones: one line a minute at most",
        static (count, detail) => OutOfMemory(detail)
            ? $"{count} more accepts put off since the last such line; the latest for want of kernel memory (ENOBUFS)"
            : $"{count} more accepts put off for want of a file descriptor since the last such line (raise -n / \"nofile\")");

    /// <summary>
    /// OTLP exports the collector did not take (<c>pipeline.telemetry_export_failures</c>): a wrong endpoint or protocol,
    /// the collector down. Its detail is the signal, the endpoint and why (the counter's reason is a fixed few).
    /// </summary>
    public static FailureWarning TelemetryExport(ILogger logger, TimeProvider time) => new(
        logger, time, "pipeline.telemetry_export_failures",
        static detail => $"cannot export {detail}; check telemetry.otlp_endpoint and otlp_protocol (or OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL) and that the collector runs; later failures: one line a minute at most",
        static (count, detail) => $"{count} more telemetry exports failed since the last such line; the latest: {detail}");

    /// <summary>
    /// Batches of spans the trace file (<c>--traces</c>) could not take (<c>pipeline.trace_file_failures</c>): a full
    /// disk, a quota. They are dropped and the relay goes on. Its detail is the error, which names the file (the
    /// counter's reason is a fixed few).
    /// </summary>
    public static FailureWarning TraceFile(ILogger logger, TimeProvider time) => new(
        logger, time, "pipeline.trace_file_failures",
        static detail => $"cannot write traces: {detail}; their spans are dropped and the relay goes on; free space there or give --traces (telemetry.traces) another folder; later failures: one line a minute at most",
        static (count, detail) => $"{count} more batches of spans could not be written to the trace file since the last such line; the latest: {detail}");

    private static bool OutOfMemory(string? reason) => reason == nameof(System.Net.Sockets.SocketError.NoBufferSpaceAvailable);

    /// <summary>Counts <paramref name="failures"/>, and writes the line if one is due.</summary>
    public void Count(long failures, string? detail = null)
    {
        long count;
        bool first;
        lock (_gate)
        {
            if (!_throttle.Count(failures, _time, out count, out first))
            {
                return;
            }
        }

        _logger.LogWarning("{Line}", first ? _first(detail) : _later(count, detail));
    }

    public void Dispose() => _listener.Dispose();
}
