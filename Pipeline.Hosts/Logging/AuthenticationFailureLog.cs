using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// At the default level, the one sign of a peer set up with another password or method (the commonest mistake: the
/// server drains such a client without a word, and its <c>-v</c> line comes only when the drain ends, a timeout
/// later): a warning when a stream or datagram fails authentication (<c>pipeline.authentication_failures</c>). The
/// first comes at once; later ones at most one line a <see cref="Interval"/>, with the count since the last, so
/// probes cannot flood the log. No timer: a failure after the interval writes the line.
/// </summary>
internal sealed class AuthenticationFailureLog : IDisposable
{
    /// <summary>The least time between two lines.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    private const string InstrumentName = "pipeline.authentication_failures";

    private readonly Lock _gate = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly MeterListener _listener = new();
    private long _unreported;
    private long _lastLine;
    private bool _logged;

    public AuthenticationFailureLog(ILogger logger, TimeProvider time)
    {
        _logger = logger;
        _time = time;
        _listener.InstrumentPublished = static (instrument, listener) =>
        {
            // By name: the instrument may be published while PipelineTelemetry is still being initialized, when
            // its field is not yet assigned.
            if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == InstrumentName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, _) => Count(value));
        _listener.Start();
    }

    /// <summary>Counts <paramref name="failures"/>, and writes the line if one is due.</summary>
    public void Count(long failures)
    {
        long count;
        bool first;
        lock (_gate)
        {
            _unreported += failures;
            var now = _time.GetTimestamp();
            if (_logged && _time.GetElapsedTime(_lastLine, now) < Interval)
            {
                return;
            }

            first = !_logged;
            count = _unreported;
            _unreported = 0;
            _lastLine = now;
            _logged = true;
        }

        if (first)
        {
            _logger.LogWarning(
                "a connection or datagram failed authentication: the other side has another password or method (or it is a probe); later failures: one line a minute at most, -v logs each");
        }
        else
        {
            _logger.LogWarning(
                "{Count} more connections or datagrams failed authentication since the last such line: another password or method on the other side, or probes", count);
        }
    }

    public void Dispose() => _listener.Dispose();
}
