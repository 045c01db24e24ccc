using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// A TCP relay's listener and the sessions it opened. Each accepted connection is counted
/// (<c>pipeline.connections_accepted</c>) and becomes a session posted to the relay's first stage. When that stage is at
/// its bounded capacity the connection is refused (closed at once) and counted (<c>pipeline.connections_refused</c>,
/// reason <c>capacity</c>; <c>acl</c> for a client the ACL refuses), rather than queued without limit. At most
/// <see cref="RelayOptions.MaxConnections"/> sessions are open at once: at the limit the loop stops accepting, so new
/// connections wait in the listen backlog until one ends (the kernel refuses them once the backlog is full). Stops in two steps: <see cref="StopAccepting"/> closes the listener and
/// open sessions go on; <see cref="DisposeAsync"/> also completes the first stage and aborts what is still open.
/// </summary>
internal sealed class AcceptLoop : IAsyncDisposable
{
    private readonly SessionRegistry _sessions = new();
    private readonly ITargetBlock<TcpSession> _firstStage;
    private readonly Socket _listener;
    private readonly IDisposable _accepts;

    /// <summary>
    /// Listens on <see cref="RelayOptions.Listen"/> and starts accepting; <paramref name="role"/> names the relay in
    /// spans; <paramref name="clientSpeaksFirst"/>: see <see cref="Listener.Open"/>. <paramref name="shadowsocksPort"/>: the
    /// server's port, where <c>fast_open</c> and <c>mptcp</c> apply.
    /// </summary>
    public AcceptLoop(
        RelayOptions options, string role, ITargetBlock<TcpSession> firstStage, TimeProvider timeProvider, bool clientSpeaksFirst = false, bool shadowsocksPort = false)
    {
        _firstStage = firstStage;
        _listener = Listener.Open(
            options.Listen, clientSpeaksFirst, acceptFastOpen: shadowsocksPort && options.FastOpen, options.ReusePort, multipath: shadowsocksPort && options.Mptcp,
            ipv6Only: options.ListenIpv6Only);
        var slots = new SemaphoreSlim(options.MaxConnections, options.MaxConnections);
        var acl = shadowsocksPort ? options.Acl : null;
        var accepted = new KeyValuePair<string, object?>(TagNames.Role, role);
        _accepts = SocketAcceptor.Accepts(_listener, slots.WaitAsync, timeProvider).Subscribe(client =>
        {
            PipelineTelemetry.ConnectionsAccepted.Add(1, accepted);
            TcpSession? session = null;
            try
            {
                session = SessionFactory.Accept(client, role, options.Cipher.Name);
                session.AcceptedAt = timeProvider.GetTimestamp();
                Admit(session, slots, acl);
            }
            catch (Exception e)
            {
                // Nothing above is expected to throw. If it does, only this connection ends: an exception out of here
                // would end the accept loop and leave the listener open with every later client waiting in its backlog.
                PipelineTelemetry.ConnectionsRefused.Add(1, new KeyValuePair<string, object?>(TagNames.Reason, "error"));
                var releasesSlot = session?.OnDisposed is not null;
                session?.Fail($"refused: {e.GetType().Name}: {e.Message}");
                session?.Dispose();
                client.Dispose();
                if (!releasesSlot)
                {
                    slots.Release();
                }
            }
        });
    }

    /// <summary>Hands an accepted session to the first stage, or refuses it (ACL, stage at capacity).</summary>
    private void Admit(TcpSession session, SemaphoreSlim slots, AccessControlList? acl)
    {
        if (acl is not null && session.Client.RemoteEndPoint is IPEndPoint peer && !acl.Admits(DualStack.Unmapped(peer).Address))
        {
            // Refused by the ACL (--acl): closed at once, as ss-server does (its span says why, for -v and traces).
            PipelineTelemetry.ConnectionsRefused.Add(1, new KeyValuePair<string, object?>(TagNames.Reason, "acl"));
            session.Fail("refused by the ACL");
            session.Dispose();
            slots.Release();
            return;
        }

        session.OnDisposed = s =>
        {
            _sessions.Remove(s);
            slots.Release();
        };
        _sessions.Add(session);
        if (!_firstStage.Post(session))
        {
            PipelineTelemetry.ConnectionsRefused.Add(1, new KeyValuePair<string, object?>(TagNames.Reason, "capacity"));
            session.Fail("refused: handshake stage at capacity");
            session.Dispose();
        }
    }

    /// <summary>The bound endpoint (useful with port 0).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>Sessions open now.</summary>
    public int ActiveSessions => _sessions.Count;

    /// <summary>How many open sessions <paramref name="match"/> picks.</summary>
    public int CountSessions(Func<TcpSession, bool> match) => _sessions.CountWhere(match);

    /// <summary>Tears down the open sessions that <paramref name="match"/> picks; returns how many.</summary>
    public int EndSessions(Func<TcpSession, bool> match) => _sessions.AbortWhere(match);

    /// <summary>Closes the listener; open sessions go on until they end or this is disposed.</summary>
    public void StopAccepting()
    {
        _accepts.Dispose();
        _listener.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        StopAccepting();
        _firstStage.Complete();
        _sessions.AbortAll();
        return ValueTask.CompletedTask;
    }
}
