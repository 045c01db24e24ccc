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
    private readonly Dictionary<string, LineThrottle> _byReason = [];
    private readonly MeterListener _listener;

    public UdpDropLog(ILogger logger, TimeProvider time)
    {
        _logger = logger;
        _time = time;
        _listener = CounterListener.Start("pipeline.udp.dropped", (_, value, tags, _) => Count(value, CounterListener.Tag(tags, TagNames.Reason) ?? "no reason given"));
    }

    /// <summary>Counts <paramref name="dropped"/> datagrams dropped for <paramref name="reason"/>, and writes its line if one is due.</summary>
    public void Count(long dropped, string reason)
    {
        long count;
        bool first;
        lock (_gate)
        {
            if (!_byReason.TryGetValue(reason, out var throttle))
            {
                _byReason[reason] = throttle = new LineThrottle();
            }

            if (!throttle.Count(dropped, _time, out count, out first))
            {
                return;
            }
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
}
