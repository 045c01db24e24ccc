using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// With <c>-v</c>: one debug line per connection when it ends, read off its spans (peer, destination, duration,
/// bytes each way, and the failing stage's reason; a multi-user server's user), so the stages need no logger of their own.
/// </summary>
internal sealed class ConnectionLog : IDisposable
{
    private const int MaxOpen = 100_000;

    private readonly ActivityListener _listener;
    private readonly ConcurrentDictionary<ActivitySpanId, Summary> _open = new();

    public ConnectionLog(ILogger logger)
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == PipelineTelemetry.Name,
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = activity => Log(logger, activity),
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose() => _listener.Dispose();

    private void Log(ILogger logger, Activity activity)
    {
        if (activity.ParentSpanId != default)
        {
            // A stage of a connection: note its failure or its byte count for the connection's line.
            var summary = _open.GetOrAdd(activity.ParentSpanId, static _ => new Summary());
            lock (summary)
            {
                if (activity.Status == ActivityStatusCode.Error)
                {
                    summary.Failure ??= $"{activity.OperationName}: {activity.StatusDescription}";
                }

                if (activity.GetTagItem(TagNames.Route) is "direct")
                {
                    summary.Direct = true;
                }

                if (activity.GetTagItem(TagNames.Bytes) is long bytes)
                {
                    if (activity.OperationName == Direction.Upstream)
                    {
                        summary.Up = bytes;
                    }
                    else
                    {
                        summary.Down = bytes;
                    }
                }
            }

            return;
        }

        _open.TryRemove(activity.SpanId, out var done);
        if (_open.Count > MaxOpen)
        {
            _open.Clear(); // stage spans whose connection span never came: drop them rather than grow
        }

        done ??= new Summary();
        var peer = HostPort(activity.GetTagItem(TagNames.NetworkPeerAddress), activity.GetTagItem(TagNames.NetworkPeerPort))
            + (activity.GetTagItem(TagNames.UserName) is string user ? $" (user {user})" : "");
        var destination = activity.GetTagItem(TagNames.ServerAddress) is { } address
            ? $"{HostPort(address, activity.GetTagItem(TagNames.ServerPort))}{(done.Direct ? " (direct, by the ACL)" : "")}"
            : "(no destination)"; // a drained probe, a UDP association's control connection
        var took = activity.Duration.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture);
        if (done.Failure is not null || activity.Status == ActivityStatusCode.Error)
        {
            // A connection one side broke says how on its own span (its directions only say they failed).
            var reason = activity.GetTagItem(TagNames.ResetBy) is not null ? activity.StatusDescription : done.Failure ?? activity.StatusDescription;
            logger.LogDebug("{Connection} {Peer} -> {Destination} failed after {Milliseconds} ms: {Reason}",
                activity.OperationName, peer, destination, took, reason);
        }
        else if (activity.GetTagItem(TagNames.UdpDatagramsOut) is long datagramsOut)
        {
            // A UDP association: its datagrams, to any number of destinations.
            logger.LogDebug("{Association} {Peer} closed after {Milliseconds} ms, {Out} datagrams out, {Back} back",
                activity.OperationName, peer, took, datagramsOut, activity.GetTagItem(TagNames.UdpDatagramsBack));
        }
        else
        {
            logger.LogDebug("{Connection} {Peer} -> {Destination} closed after {Milliseconds} ms, {Up} B up, {Down} B down",
                activity.OperationName, peer, destination, took, done.Up, done.Down);
        }
    }

    /// <summary>
    /// host:port, an IPv6 address in brackets ([::1]:8388), as addresses are written everywhere else; a name that is
    /// already in brackets (a client sent "[::1]") is not bracketed again.
    /// </summary>
    private static string HostPort(object? host, object? port) =>
        host is string h ? $"{ShadowsocksAddress.Bracketed(h)}:{port}" : $"{host}:{port}";

    private sealed class Summary
    {
        public string? Failure { get; set; }

        public long Up { get; set; }

        public long Down { get; set; }

        public bool Direct { get; set; }
    }
}
