using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>Subscribes a listener's accepts and hands each new session to a relay's first stage.</summary>
internal static class AcceptLoop
{
    /// <summary>
    /// Posts each accepted connection to <paramref name="firstStage"/>. When that stage is at its bounded capacity
    /// the connection is refused (closed at once) and counted, rather than queued without limit. At most
    /// <paramref name="maxConnections"/> sessions are open at once: at the limit the loop stops accepting, so new
    /// connections wait in the listen backlog until one ends (the kernel refuses them once the backlog is full).
    /// </summary>
    public static IDisposable Start(
        Socket listener, string role, string method, ITargetBlock<TcpSession> firstStage, SessionRegistry sessions, int maxConnections = int.MaxValue)
    {
        var slots = new SemaphoreSlim(maxConnections, maxConnections);
        return SocketAcceptor.Accepts(listener, slots.WaitAsync).Subscribe(client =>
        {
            var session = SessionFactory.Accept(client, role, method);
            session.OnDisposed = s =>
            {
                sessions.Remove(s);
                slots.Release();
            };
            sessions.Add(session);
            if (!firstStage.Post(session))
            {
                PipelineTelemetry.ConnectionsRefused.Add(1);
                session.Fail("refused: handshake stage at capacity");
                session.Dispose();
            }
        });
    }
}
