using System.Collections.Concurrent;
using System.Diagnostics;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>The spans that end while this listens, so that a test can take one connection's trace by its client port.</summary>
internal sealed class ConnectionSpans : IDisposable
{
    private readonly ConcurrentQueue<Activity> _ended = new();
    private readonly ActivityListener _listener;

    public ConnectionSpans()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = static source => source.Name == PipelineTelemetry.Name,
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _ended.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>
    /// The child spans of the connection span <paramref name="root"/> (<c>server connection</c>, ...) whose client
    /// connected from <paramref name="clientPort"/>, once that span has ended: it ends when the session is disposed,
    /// after its stages' spans. Null if it has not ended within <paramref name="deadline"/>.
    /// </summary>
    public async Task<Activity[]?> ChildrenAsync(string root, int clientPort, TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < deadline)
        {
            var connection = _ended.FirstOrDefault(a => a.OperationName == root && a.ParentSpanId == default
                && a.GetTagItem(TagNames.NetworkPeerPort) is int port && port == clientPort);
            if (connection is not null)
            {
                return [.. _ended.Where(a => a.TraceId == connection.TraceId && a.ParentSpanId == connection.SpanId)];
            }

            await Task.Delay(20);
        }

        return null;
    }

    /// <summary>The first ended span that <paramref name="match"/> picks; null if none has ended within <paramref name="deadline"/>.</summary>
    public async Task<Activity?> EndedAsync(Func<Activity, bool> match, TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < deadline)
        {
            if (_ended.FirstOrDefault(match) is { } span)
            {
                return span;
            }

            await Task.Delay(20);
        }

        return null;
    }

    public void Dispose() => _listener.Dispose();
}
