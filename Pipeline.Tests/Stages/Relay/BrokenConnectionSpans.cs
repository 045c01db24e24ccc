using System.Collections.Concurrent;
using System.Diagnostics;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>The connection spans that end marked as broken (<c>pipeline.reset_by</c>) while this listens.</summary>
internal sealed class BrokenConnectionSpans : IDisposable
{
    private readonly ConcurrentQueue<string> _ended = new();
    private readonly ActivityListener _listener;

    public BrokenConnectionSpans()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = static source => source.Name == PipelineTelemetry.Name,
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.ParentSpanId == default && activity.GetTagItem(TagNames.ResetBy) is not null)
                {
                    _ended.Enqueue($"{activity.OperationName.Replace(" connection", "", StringComparison.Ordinal)}: {activity.StatusDescription}");
                }
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>"role: status" of each, in order of role, once <paramref name="count"/> have ended (or 10 s have passed).</summary>
    public async Task<string[]> EndedAsync(int count)
    {
        // A connection's span ends when its session is disposed, on its own thread, a moment after its sockets close.
        for (var i = 0; i < 200 && _ended.Count < count; i++)
        {
            await Task.Delay(50);
        }

        return [.. _ended.Order(StringComparer.Ordinal)];
    }

    public void Dispose() => _listener.Dispose();
}
