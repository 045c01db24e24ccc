using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
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
            using var span = StageActivity.Start(Name, session, s_options);
            var left = timeout(session);
            try
            {
                if (left <= TimeSpan.Zero)
                {
                    throw new OperationCanceledException(); // a Deadline of zero would never fire
                }

                using var deadline = SocketReads.Deadline(left, timeProvider, session.Cancellation.Token);
                await SocketReadiness.ReadableAsync(session.Client, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (session.Cancellation.IsCancellationRequested)
            {
                // Torn down while it waited (shutdown, a user taken off by a reload): its own reason stands if it has one.
                session.Fail($"{waitingFor}: the connection was ended");
                span.Fail(session.FailureReason!);
            }
            catch (OperationCanceledException)
            {
                timedOut?.Invoke();
                session.Fail($"timed out {waitingFor}");
                span.Fail(session.FailureReason!);
            }
            catch (ObjectDisposedException)
            {
                session.Fail($"{waitingFor}: the connection was closed");
                span.Fail(session.FailureReason!);
            }

            return session;
        }), BlockOptions.Shared(s_options));
}
