using System.Diagnostics;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Socks5Trim;

namespace Shadowsocks.Pipeline.Stages.Reject;

/// <summary>
/// Where failed sessions end (and those a stopping relay cannot take on). Most are closed at once. A server session that failed authentication or sent a bad
/// header is drained instead (PROTOCOL.md § Probe resistance): read and discard until the client closes or the
/// ordinary idle timeout fires, so the close never comes at a byte count that depends on the probe.
/// </summary>
internal static class RejectStage
{
    public static ActionBlock<TcpSession> Create(TimeSpan idleTimeout, TimeProvider timeProvider) =>
        new(async session =>
        {
            if (session.IsAlive)
            {
                // Sent here alive only when the stage it was going back to had stopped (a relay being disposed).
                session.Fail("the connection was ended");
            }

            if (session.DrainOnFailure)
            {
                _ = DrainAsync(session, idleTimeout, timeProvider);
                return;
            }

            try
            {
                if (session.Socks5ReplyPending)
                {
                    await Socks5HandshakeStage.ReplyAsync(session, session.FailureReply, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (Exception e)
            {
                // Not expected (the reply's own send failures are its business), and the stage must not fault: a
                // faulted reject stage would leave every later failed connection open, holding its slot.
                StageGuard.CountFault("reject");
                Trace.TraceError($"reject: {e}");
            }
            finally
            {
                session.Dispose();
            }
        }, new ExecutionDataflowBlockOptions { BoundedCapacity = DataflowBlockOptions.Unbounded, MaxDegreeOfParallelism = DataflowBlockOptions.Unbounded });

    private static async Task DrainAsync(TcpSession session, TimeSpan idleTimeout, TimeProvider timeProvider)
    {
        try
        {
            await ClientDrain.RunAsync(session.Client, idleTimeout, timeProvider, session.Cancellation.Token).ConfigureAwait(false);
        }
        finally
        {
            session.Dispose();
        }
    }
}
