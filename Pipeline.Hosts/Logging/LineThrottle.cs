namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// The pace of one kind of log line: the first at once, later ones at most one a <see cref="FailureWarning.Interval"/>,
/// each with the count since the last. No timer: an event after the interval writes the line. Not thread-safe: its
/// owner holds a lock around <see cref="Count"/>.
/// </summary>
internal sealed class LineThrottle
{
    private long _unreported;
    private long _lastLine;
    private bool _logged;

    /// <summary>
    /// Counts <paramref name="events"/>; true when a line is due, with the count it reports (this call's included) and
    /// whether it is the first line.
    /// </summary>
    public bool Count(long events, TimeProvider time, out long count, out bool first)
    {
        _unreported += events;
        var now = time.GetTimestamp();
        if (_logged && time.GetElapsedTime(_lastLine, now) < FailureWarning.Interval)
        {
            (count, first) = (0, false);
            return false;
        }

        (count, first) = (_unreported, !_logged);
        _unreported = 0;
        _lastLine = now;
        _logged = true;
        return true;
    }
}
