using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.ReadHeader;

/// <summary>
/// Shared, connection-level (server): waits until the client has sent bytes, before the header stage and between its
/// reads, so that a client that connects and says nothing, or sends its header a few bytes at a time, holds no slot of
/// the header stage while it waits. (Before, 1,024 silent connections, which need no key, held every slot for the idle
/// timeout and the server served no one else; a silent connection now costs what it costs ss-server, a socket.)
/// The wait is the header's idle deadline: <paramref name="timeout"/> after the accept or the last bytes, the session
/// fails and is closed, as a drained probe is. Unbounded: what waits here is bounded by <c>max_connections</c>, as
/// open sockets are.
/// </summary>
internal static class WaitForBytesStage
{
    public const string Name = "wait_for_bytes";

    /// <summary>No bound of its own (the accept loop's <c>max_connections</c> is); the span tags say so (-1).</summary>
    private static readonly StageOptions s_options = new(DataflowBlockOptions.Unbounded, DataflowBlockOptions.Unbounded);

    public static TransformBlock<TcpSession, TcpSession> Create(TimeSpan timeout, TimeProvider timeProvider) =>
        new(StageGuard.Isolate(Name, async session =>
        {
            using var span = StageActivity.Start(Name, session, s_options);
            using var deadline = SocketReads.Deadline(timeout, timeProvider, session.Cancellation.Token);
            try
            {
                await SocketReadiness.ReadableAsync(session.Client, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                session.Fail("timed out reading the address header");
                span.Fail(session.FailureReason!);
            }
            catch (ObjectDisposedException)
            {
                session.Fail("reading the address header: the connection was closed");
                span.Fail(session.FailureReason!);
            }

            return session;
        }), BlockOptions.Shared(s_options));
}
