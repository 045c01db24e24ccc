using System.Buffers.Binary;
using System.Net;
using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// A SIP022 UDP server's codec and its sessions. SIP022 § 3.2.4: sessions go by the client's session ID (which owns
/// them: they are disposed as they leave that table), and each remembers the address it was last heard from, where
/// the replies go; the relay's NAT entries go by session too. So a client whose address changes keeps its session and
/// its outbound socket, a packet replayed from another address meets the same replay window, and two clients (two
/// users of a multi-user server) behind one address and port each get their own replies. Kept <c>udp_timeout</c>
/// after the last packet either way, but at least 61 s (<see cref="SaltFilters.Keep2022"/>). A session pushed out for
/// room (the table full) leaves its ID barred for as long: a new session under it would start with an empty replay
/// window, and the old session's recorded packets would pass it.
/// </summary>
internal sealed class Udp2022ServerSessions : IDisposable
{
    /// <param name="ended">Told of each session as it leaves the ID table, disposed (the relay ends its NAT entry).</param>
    /// <param name="users">A multi-user server's table (the process's one, shared with its other relays); else built from the options.</param>
    public Udp2022ServerSessions(RelayOptions options, IScheduler scheduler, TimeProvider time, Action<Udp2022ServerSession>? ended = null, ServerUsers? users = null)
    {
        _users = users ?? ServerUsers.For(options);
        Codec = new Udp2022Codec(options.Cipher, options.MasterKey, time, users: _users);
        var keep = SaltFilters.Keep2022(options.UdpTimeout);
        _pushedOut = new RecentSalts(SaltFilters.Retention2022, time);
        ById = new LruCache<ulong, Udp2022ServerSession>(options.UdpMaxAssociations, keep, sliding: true, scheduler, (id, session, reason) =>
        {
            if (reason == EvictionReason.Capacity)
            {
                Span<byte> key = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64BigEndian(key, id);
                _pushedOut.TryAdd(key);
            }

            session.Dispose();
            ended?.Invoke(session);
        });
        Find = id => ById.TryPeek(id, out var session) ? session : null; // not yet a use: the packet may still be refused
    }

    private readonly RecentSalts _pushedOut;
    private readonly ServerUsers? _users;

    public Udp2022Codec Codec { get; }

    /// <summary>Sessions by client session ID: the owner.</summary>
    public LruCache<ulong, Udp2022ServerSession> ById { get; }

    /// <summary>
    /// <see cref="ById"/> as the codec asks it, before the packet is checked: a peek, so a refused packet (a replay of a
    /// recording, however old) keeps no session alive and pushes no other out; <see cref="Keep"/> marks the use. One
    /// delegate, made once.
    /// </summary>
    public Func<ulong, Udp2022ServerSession?> Find { get; }

    /// <summary>
    /// After a packet opened in <paramref name="session"/>: keeps a new session (false, and it is disposed, if its ID was
    /// pushed out for room within the retention) and notes the address it came from, where the replies now go.
    /// </summary>
    public bool Keep(Udp2022ServerSession session, IPEndPoint from)
    {
        if (session.Ended)
        {
            return false; // expired between the codec's look-up and here (the table's sweep runs on a timer thread)
        }

        if (!ById.TryGet(session.ClientSessionId, out var kept) || !ReferenceEquals(kept, session))
        {
            Span<byte> key = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(key, session.ClientSessionId);
            if (_pushedOut.Contains(key))
            {
                session.Dispose();
                return false;
            }

            ById.Set(session.ClientSessionId, session);
            if (session.Ended || (session.User is { } user && _users?.Serves(user) == false))
            {
                // It ended as it was put back, or its user was taken off the list (a reload) after the packet was
                // opened: a reload's sweep either found it in the table (under the table's lock) or is seen here.
                ById.Remove(session.ClientSessionId);
                return false;
            }
        }

        session.LastHeardFrom = from;

        return true;
    }

    public void Dispose()
    {
        ById.Dispose();
    }
}
