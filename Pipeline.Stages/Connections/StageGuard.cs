using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// Keeps a shared connection-level stage serving when its work for one connection throws something no catch of its
/// own names (a bug, or a failure nobody foresaw): a Dataflow block whose delegate throws is faulted for good, and a
/// shared stage that faulted would take no connection again. The exception fails that connection only: it goes on to
/// the reject stage (closed, or sent its SOCKS5 reply), its span says what was thrown, and
/// <c>pipeline.stage_faults</c> counts it by stage.
/// </summary>
internal static class StageGuard
{
    public static Func<TcpSession, Task<TcpSession>> Isolate(string stage, Func<TcpSession, Task<TcpSession>> work) =>
        session =>
        {
            Task<TcpSession> task;
            try
            {
                task = work(session);
            }
            catch (Exception e)
            {
                return Task.FromResult(Failed(stage, session, e));
            }

            return task.IsCompletedSuccessfully ? task : AwaitAsync(stage, session, task);
        };

    private static async Task<TcpSession> AwaitAsync(string stage, TcpSession session, Task<TcpSession> task)
    {
        try
        {
            return await task.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Failed(stage, session, e);
        }
    }

    /// <summary>Counts an unforeseen exception of <paramref name="stage"/>'s work in <c>pipeline.stage_faults</c>.</summary>
    public static void CountFault(string stage) =>
        PipelineTelemetry.StageFaults.Add(1, new KeyValuePair<string, object?>(TagNames.Stage, stage));

    private static TcpSession Failed(string stage, TcpSession session, Exception e)
    {
        CountFault(stage);
        session.Fail($"{stage}: {e.GetType().Name}: {e.Message}");
        return session;
    }
}
