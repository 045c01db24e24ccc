using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>Runs one connected session's data stages to the end and releases everything it holds.</summary>
internal static class SessionRunner
{
    /// <summary>
    /// Starts the session's <see cref="CipherDuplex"/> on the thread pool and returns at once. The relays call this
    /// from one ActionBlock shared by every connection: running the duplex's synchronous start (building its
    /// blocks, encrypting the first payload, the first non-blocking receives) on that block's single thread
    /// serialized connection starts (traces showed the server's read_header waiting 14 ms at p50 for it under 50
    /// concurrent short connections). The decryptor is the session's own when the handshake already created it
    /// (server); otherwise a new one. <paramref name="clientSide"/>: what a local's or tunnel's streams share (2022).
    /// <paramref name="ownSalts"/>: a server's replay filter, which its answers' salts go into (reflections are replays).
    /// <paramref name="role"/> (local, server, tunnel) tags <see cref="PipelineTelemetry.ActiveConnections"/>, as the
    /// accept loop tags <see cref="PipelineTelemetry.ConnectionsAccepted"/>.
    /// </summary>
    public static void Start(
        TcpSession session, string role, bool plainSideIsClient, RelayOptions options, IScheduler scheduler, TimeProvider time, ClientSide? clientSide = null,
        ISaltFilter? ownSalts = null) =>
        _ = Task.Run(() => RunAsync(session, role, plainSideIsClient, options, scheduler, time, clientSide, ownSalts));

    private static async Task RunAsync(
        TcpSession session, string role, bool plainSideIsClient, RelayOptions options, IScheduler scheduler, TimeProvider time, ClientSide? clientSide, ISaltFilter? ownSalts)
    {
        var roleTag = new KeyValuePair<string, object?>(TagNames.Role, role);
        PipelineTelemetry.ActiveConnections.Add(1, roleTag);
        var idle = new IdleTimer(scheduler, options.IdleTimeout, session.IdleTimedOut, session.DeliveryProgress);
        session.ResetPatience = options.IdleTimeout;
        try
        {
            var remote = session.Remote!;
            var (plainSide, cipherSide) = plainSideIsClient ? (session.Client, remote) : (remote, session.Client);
            await CipherDuplex.RunAsync(session, plainSide, cipherSide, plainSideIsClient, options, idle, time, clientSide, ownSalts).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Nothing may escape a connection's task; a bug here must cost this connection only.
            session.Fail($"relay: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            idle.Dispose();
            HalfOpenWatch.Shared.Forget(session);
            try
            {
                if (session.ClientLeftToDrain)
                {
                    // A server's client whose stream failed authentication after its header: drained as a failed
                    // header is, still counted as a connection, until it closes, the idle timeout after its last
                    // bytes, or the relay ends it (TcpSession.End).
                    await ClientDrain.RunAsync(session.Client, options.IdleTimeout, time, session.Ended).ConfigureAwait(false);
                }
            }
            finally
            {
                session.Dispose();
                PipelineTelemetry.ActiveConnections.Add(-1, roleTag);
            }
        }
    }
}
