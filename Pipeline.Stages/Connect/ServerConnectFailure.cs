using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Connect;

/// <summary>
/// Why a local or tunnel could not reach its server, as <see cref="PipelineTelemetry.ServerConnectFailures"/> and
/// <see cref="PipelineTelemetry.ServerCircuitChanges"/> tag it: the fixed set of <see cref="DestinationFailure"/>'s connect
/// reasons (<c>lookup_failed</c>: a server given by name that did not resolve), never an error's text; the server is a
/// label of its own (<see cref="TagNames.ServerAddress"/>, bounded by the configuration). The text the warning lines
/// name goes to their listeners as the measurement's <see cref="CounterDetail"/>.
/// </summary>
internal static class ServerConnectFailure
{
    /// <summary>A failed attempt's reason: refused, timed out, a name that did not resolve, or any other error unreachable.</summary>
    public static string Of(Exception? failure) => failure switch
    {
        SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData } => DestinationFailure.LookupFailed,
        SocketException failed => DestinationFailure.Of(failed.SocketErrorCode),
        _ => DestinationFailure.TimedOut,
    };

    /// <summary>Counts a connection that reached no server; <paramref name="server"/>: the one whose failure was the last, if known.</summary>
    public static void Count(EndPoint? server, Exception? failure, string detail)
    {
        var reason = new KeyValuePair<string, object?>(TagNames.Reason, Of(failure));
        if (server is null)
        {
            CounterDetail.Add(PipelineTelemetry.ServerConnectFailures, detail, reason);
        }
        else
        {
            CounterDetail.Add(PipelineTelemetry.ServerConnectFailures, detail, reason, new KeyValuePair<string, object?>(TagNames.ServerAddress, ServerFailover.Name(server)));
        }
    }
}
