using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// Why a server (or a local's direct route) could not reach a connection's destination, counted in
/// <see cref="PipelineTelemetry.DestinationFailures"/>: a fixed set of reasons, never the destination (its names are
/// unbounded; the span and the <c>-v</c> line name it).
/// </summary>
internal static class DestinationFailure
{
    public const string LookupFailed = "lookup_failed";
    public const string Forbidden = "forbidden";
    public const string Refused = "refused";
    public const string TimedOut = "timed_out";
    public const string Unreachable = "unreachable";

    public static void Count(string reason) =>
        PipelineTelemetry.DestinationFailures.Add(1, new KeyValuePair<string, object?>(TagNames.Reason, reason));

    /// <summary>A connect's error as a reason: refused, timed out, or any other (no route, network down, ...) unreachable.</summary>
    public static string Of(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => Refused,
        SocketError.TimedOut => TimedOut,
        _ => Unreachable,
    };
}
