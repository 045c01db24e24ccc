using System.Collections.Concurrent;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>The sessions a relay has open, so that stopping the relay can close them all.</summary>
internal sealed class SessionRegistry
{
    private readonly ConcurrentDictionary<TcpSession, byte> _sessions = new();

    public int Count => _sessions.Count;

    public void Add(TcpSession session) => _sessions.TryAdd(session, 0);

    public void Remove(TcpSession session) => _sessions.TryRemove(session, out _);

    /// <summary>How many open sessions <paramref name="match"/> picks (enumerated without taking the dictionary's locks).</summary>
    public int CountWhere(Func<TcpSession, bool> match)
    {
        var count = 0;
        foreach (var (session, _) in _sessions)
        {
            if (match(session))
            {
                count++;
            }
        }

        return count;
    }

    public void AbortAll() => AbortWhere(static _ => true);

    /// <summary>Ends every open session that <paramref name="match"/> picks (<see cref="TcpSession.End"/>, a drain of its client too); returns how many.</summary>
    public int AbortWhere(Func<TcpSession, bool> match)
    {
        var aborted = 0;
        foreach (var session in _sessions.Keys)
        {
            if (match(session))
            {
                session.End();
                aborted++;
            }
        }

        return aborted;
    }
}
