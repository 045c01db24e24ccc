using System.Diagnostics.Metrics;

namespace Shadowsocks.Pipeline.Core.Diagnostics;

/// <summary>
/// The free text behind one measurement of a counter whose tags are bounded (an error message, the servers tried, a
/// file's name): too varied for a metric's label, wanted by the log line that follows the counter
/// (<c>Hosts/Logging</c>'s listeners). It is set on the thread that adds to the counter, for the length of that
/// <see cref="Counter{T}.Add(T, KeyValuePair{string, object?}[])"/>: a <see cref="MeterListener"/>'s callback runs there,
/// synchronously, and reads <see cref="Current"/>; exporters never see it.
/// </summary>
internal static class CounterDetail
{
    [ThreadStatic]
    private static string? t_current;

    /// <summary>The detail of the measurement being recorded on this thread, or null.</summary>
    public static string? Current => t_current;

    /// <summary>Adds one to <paramref name="counter"/> with <paramref name="tags"/>, its listeners seeing <paramref name="detail"/>.</summary>
    public static void Add(Counter<long> counter, string detail, params ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var outer = t_current;
        t_current = detail;
        try
        {
            counter.Add(1, tags);
        }
        finally
        {
            t_current = outer;
        }
    }
}
