using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>Dropping a datagram is an expected outcome: count it by reason, give the buffer back, never throw.</summary>
internal static class UdpCounters
{
    public static void Drop(Datagram datagram, string reason)
    {
        PipelineTelemetry.UdpDropped.Add(1, new KeyValuePair<string, object?>(TagNames.Reason, reason));
        datagram.Return();
    }
}
