using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// With <c>-v</c>: the datagrams a UDP relay dropped (<c>pipeline.udp.dropped</c>), which otherwise show only as that
/// counter. One debug line for each reason at once (<c>udp: a datagram was dropped: socks5 fragment; ...</c>), then
/// at most one line a <see cref="FailureWarning.Interval"/> per reason with the count since its last line, so a flood
/// (a client that sends fragments, a burst beyond the kernel's buffer) is a few lines, not one per datagram. No
/// timer: a drop after the interval writes the line.
/// </summary>
internal sealed class UdpDropLog : IDisposable
{
    private readonly Lock _gate = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, Tally> _byReason = [];
    private readonly MeterListener _listener = new();

    public UdpDropLog(ILogger logger, TimeProvider time)
    {
        _logger = logger;
        _time = time;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            // By name, as FailureWarning: the instrument may be published before PipelineTelemetry's field is assigned.
            if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == "pipeline.udp.dropped")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) => Count(value, Reason(tags)));
        _listener.Start();
    }

    /// <summary>Counts <paramref name="dropped"/> datagrams dropped for <paramref name="reason"/>, and writes its line if one is due.</summary>
    public void Count(long dropped, string reason)
    {
        long count;
        bool first;
        lock (_gate)
        {
            if (!_byReason.TryGetValue(reason, out var tally))
            {
                _byReason[reason] = tally = new Tally();
            }

            tally.Unreported += dropped;
            var now = _time.GetTimestamp();
            if (tally.Logged && _time.GetElapsedTime(tally.LastLine, now) < FailureWarning.Interval)
            {
                return;
            }

            first = !tally.Logged;
            count = tally.Unreported;
            tally.Unreported = 0;
            tally.LastLine = now;
            tally.Logged = true;
        }

        if (first)
        {
            _logger.LogDebug("udp: a datagram was dropped: {Reason}; later drops for this reason: one line a minute at most (metric pipeline.udp.dropped)", reason);
        }
        else
        {
            _logger.LogDebug("udp: {Count} more datagram{S} dropped since the last such line: {Reason}", count, count == 1 ? " was" : "s were", reason);
        }
    }

    public void Dispose() => _listener.Dispose();

    private static string Reason(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == TagNames.Reason && tag.Value is string reason)
            {
                return reason;
            }
        }

        return "no reason given";
    }

    private sealed class Tally
    {
        public long Unreported { get; set; }

        public long LastLine { get; set; }

        public bool Logged { get; set; }
    }
}
