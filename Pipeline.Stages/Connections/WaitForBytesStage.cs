using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// Shared, connection-level: waits until the client has sent bytes, before a stage that reads what the client says
/// first (the server's header stage, the local's SOCKS5 handshake) and between its reads, so that a client that
/// connects and says nothing, or sends a few bytes at a time, holds no slot of that stage while it waits. (Before,
/// 1,024 silent connections, which need no key, held every slot of the server's header stage for the idle timeout and
/// the server served no one else; a local shared on a LAN was held the same way for the handshake timeout.) A silent
/// connection now costs what it costs ss-server, a socket.
/// The wait ends when <paramref name="timeout"/> gives the session no more time (measured as that function says: the
/// server's idle timeout from the last bytes, the local's handshake timeout from the accept): the session then fails
/// and is closed. Unbounded: what waits here is bounded by <c>max_connections</c>, as open sockets are.
/// <para>
/// One span per connection, not per wait: from the first wait's start to the last bytes' arrival, made when the
/// waiting is over (a wait failed, or the stage after it ended its work: <see cref="EndSpan"/>), so a client sending a
/// byte at a time gets one, as it gets one header or handshake span.
/// </para>
/// </summary>
internal static class WaitForBytesStage
{
    public const string Name = "wait_for_bytes";

    /// <summary>No bound of its own (the accept loop's <c>max_connections</c> is); the span tags say so (-1).</summary>
    private static readonly StageOptions s_options = new(DataflowBlockOptions.Unbounded, DataflowBlockOptions.Unbounded);

    /// <summary>
    /// <paramref name="waitingFor"/> names what the stage after it reads, in its failure reasons ("timed out
    /// reading the address header"); <paramref name="timeout"/> is how long a session may wait now (none left: it
    /// fails at once); <paramref name="timedOut"/> runs for a session that timed out (a metric).
    /// </summary>
    public static TransformBlock<TcpSession, TcpSession> Create(
        string waitingFor, Func<TcpSession, TimeSpan> timeout, TimeProvider timeProvider, Action? timedOut = null) =>
        new(StageGuard.Isolate(Name, async session =>
        {
            var traced = PipelineTelemetry.Source.HasListeners();
            if (traced && session.WaitStarted == default)
            {
                session.WaitStarted = DateTime.UtcNow;
            }

            var left = timeout(session);
            try
            {
                if (left <= TimeSpan.Zero)
                {
                    throw new OperationCanceledException(); // a Deadline of zero would never fire
                }

                using var deadline = SocketReads.Deadline(left, timeProvider, session.Cancellation.Token);
                await SocketReadiness.ReadableAsync(session.Client, deadline.Token).ConfigureAwait(false);
                if (traced)
                {
                    session.WaitEnded = DateTime.UtcNow;
                }
            }
            catch (OperationCanceledException) when (session.Cancellation.IsCancellationRequested)
            {
                // Torn down while it waited (shutdown, a user taken off by a reload): its own reason stands if it has one.
                session.Fail($"{waitingFor}: the connection was ended");
                EndSpan(session, failed: true);
            }
            catch (OperationCanceledException)
            {
                timedOut?.Invoke();
                session.Fail($"timed out {waitingFor}");
                EndSpan(session, failed: true);
            }
            catch (ObjectDisposedException)
            {
                session.Fail($"{waitingFor}: the connection was closed");
                EndSpan(session, failed: true);
            }

            return session;
        }), BlockOptions.Shared(s_options));

    /// <summary>
    /// The stage after the wait is done with the client's first bytes (the header or handshake is read, or failed):
    /// the session's waits, one or many, end in one span. Nothing when spans were not recorded, or already made.
    /// </summary>
    public static void EndSpan(TcpSession session) => EndSpan(session, failed: false);

    /// <summary><paramref name="failed"/>: a wait failed (<see cref="TcpSession.FailureReason"/>); the span ends now with it.</summary>
    private static void EndSpan(TcpSession session, bool failed)
    {
        if (session.WaitStarted == default)
        {
            return;
        }

        using var span = StageActivity.Start(Name, session, s_options);
        span?.SetStartTime(session.WaitStarted);
        if (failed)
        {
            span.Fail(session.FailureReason!);
        }
        else if (session.WaitEnded > session.WaitStarted)
        {
            span?.SetEndTime(session.WaitEnded);
        }

        session.WaitStarted = default;
    }
}
