using System.Diagnostics;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// Keeps a UDP stage serving when its work on one datagram throws something no catch of its own names (a bug, or an
/// input nobody foresaw): a Dataflow block whose delegate throws is faulted for good, the fault goes down the linked
/// blocks, and the relay's UDP would stop for every client until a restart. The exception costs that datagram only:
/// <c>pipeline.stage_faults</c> counts it by stage (as <see cref="StageGuard"/> does for a TCP stage), and, unless the
/// stage had dropped it already, <c>pipeline.udp.dropped</c> counts it as "stage fault in STAGE" and its buffer goes back.
/// A span named after the stage records the exception.
/// </summary>
/// <remarks>
/// The wrappers are made once per block; per datagram they add a try/catch and nothing else (no allocation).
/// </remarks>
internal static class UdpStageGuard
{
    /// <summary>A stage that passes a datagram on, or drops it (nothing passed on).</summary>
    public static Func<Datagram, IEnumerable<Datagram>> Isolate(string stage, Func<Datagram, IEnumerable<Datagram>> work)
    {
        var reason = Reason(stage);
        return datagram =>
        {
            try
            {
                return work(datagram);
            }
            catch (Exception e)
            {
                Dropped(stage, reason, datagram, e);
                return [];
            }
        };
    }

    /// <summary>The same for a stage whose work may wait (a DNS lookup).</summary>
    public static Func<Datagram, Task<IEnumerable<Datagram>>> Isolate(string stage, Func<Datagram, Task<IEnumerable<Datagram>>> work)
    {
        var reason = Reason(stage);
        return datagram =>
        {
            Task<IEnumerable<Datagram>> task;
            try
            {
                task = work(datagram);
            }
            catch (Exception e)
            {
                Dropped(stage, reason, datagram, e);
                return Task.FromResult<IEnumerable<Datagram>>([]);
            }

            return task.IsCompletedSuccessfully ? task : AwaitAsync(stage, reason, datagram, task);
        };
    }

    /// <summary>The same for a last stage (a send): the datagram ends there.</summary>
    public static Action<Datagram> Isolate(string stage, Action<Datagram> work)
    {
        var reason = Reason(stage);
        return datagram =>
        {
            try
            {
                work(datagram);
            }
            catch (Exception e)
            {
                Dropped(stage, reason, datagram, e);
            }
        };
    }

    private static async Task<IEnumerable<Datagram>> AwaitAsync(string stage, string reason, Datagram datagram, Task<IEnumerable<Datagram>> task)
    {
        try
        {
            return await task.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Dropped(stage, reason, datagram, e);
            return [];
        }
    }

    private static string Reason(string stage) => "stage fault in " + stage;

    /// <summary>
    /// Counts the fault and says what was thrown in a span of its own, named after the stage (a datagram has no span,
    /// and a counter cannot say which exception: the trace file or Jaeger shows it, with its stack, for a bug report);
    /// the datagram is dropped and its buffer returned, unless the stage did that before it threw (a drop already
    /// counted with its own reason: the buffer must not go back twice).
    /// </summary>
    private static void Dropped(string stage, string reason, Datagram datagram, Exception e)
    {
        StageGuard.CountFault(stage);
        using (var span = PipelineTelemetry.StartRoot(stage, ActivityKind.Internal))
        {
            if (span is not null)
            {
                span.SetTag(TagNames.Stage, stage);
                span.AddException(e);
                span.SetStatus(ActivityStatusCode.Error, $"{e.GetType().Name}: {e.Message}");
            }
        }

        if (!datagram.Returned)
        {
            UdpCounters.Drop(datagram, reason);
        }
    }
}
