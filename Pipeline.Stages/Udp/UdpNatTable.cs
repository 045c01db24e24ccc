using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// A client's key → <see cref="UdpNatEntry"/>, on the LRU cache: entries expire <c>udp_timeout</c> after their last
/// datagram either way (sliding), the least recently used goes when the table is full, and every entry that leaves
/// closes its socket. Replies received on an entry's socket are stamped with the client they go to and offered to
/// <c>back</c>. The key is the client's address, or a 2022 server's client session (SIP022 § 3.2.4), which keeps its
/// outbound socket when the client's address changes; a reply to a session also carries the session.
/// </summary>
internal sealed class UdpNatTable<TKey> : IDisposable
    where TKey : notnull
{
    private readonly LruCache<TKey, UdpNatEntry> _entries;
    private readonly Func<TKey, IPEndPoint> _clientOf;
    private readonly Func<IPEndPoint, Socket> _openOutbound;
    private readonly ITargetBlock<Datagram> _back;
    private readonly EventLoop _loop;
    private readonly string _role;
    private readonly Func<TKey, bool>? _admits;
    private readonly object _admission = new();

    /// <param name="clientOf">Where a key's replies go, asked for each reply (a session's client may have moved).</param>
    /// <param name="openOutbound">Makes the outbound socket for a new client (connected to the server, or unconnected).</param>
    /// <param name="back">The first stage of the way back (replies toward the client).</param>
    /// <param name="loop">Where the entries' sockets are received on.</param>
    /// <param name="admits">
    /// Whether a client may have a new entry (local: it holds a live association). Asked as the entry would be made,
    /// under the same lock as <see cref="RemoveWhere"/>, so an association that ends while its last datagram is on
    /// the way leaves no entry behind.
    /// </param>
    /// <param name="removed">Told each key whose entry left (expired, evicted, removed), after its socket closed.</param>
    public UdpNatTable(
        int capacity, TimeSpan timeout, IScheduler scheduler, Func<TKey, IPEndPoint> clientOf, Func<IPEndPoint, Socket> openOutbound, ITargetBlock<Datagram> back,
        EventLoop loop, string role, Func<TKey, bool>? admits = null, Action<TKey>? removed = null)
    {
        _admits = admits;
        _clientOf = clientOf;
        _loop = loop;
        _openOutbound = openOutbound;
        _back = back;
        _role = role;
        _entries = new LruCache<TKey, UdpNatEntry>(capacity, timeout, sliding: true, scheduler, (key, entry, _) =>
        {
            entry.Dispose();
            removed?.Invoke(key);
        });
    }

    public int Count => _entries.Count;

    /// <summary>
    /// The client's entry, made (socket opened, reply loop started) on its first datagram; null when the client may
    /// not have one (see the constructor's <c>admits</c>).
    /// </summary>
    public UdpNatEntry? GetOrAdd(TKey key)
    {
        if (_admits is null)
        {
            return _entries.GetOrAdd(key, Open);
        }

        lock (_admission)
        {
            return _entries.TryGet(key, out var entry) ? entry : _admits(key) ? _entries.GetOrAdd(key, Open) : null;
        }
    }

    /// <summary>Ends one key's association (a 2022 server: its session ended), under the admission lock.</summary>
    public bool Remove(TKey key)
    {
        lock (_admission)
        {
            return _entries.Remove(key);
        }
    }

    /// <summary>Ends every association whose key matches (local: all of one client address, its SOCKS5 control connection closed).</summary>
    public int RemoveWhere(Func<TKey, bool> match)
    {
        lock (_admission)
        {
            return _entries.RemoveWhere(match);
        }
    }

    public void Dispose() => _entries.Dispose();

    private UdpNatEntry Open(TKey key)
    {
        var client = _clientOf(key);
        var span = PipelineTelemetry.StartRoot("udp.association", ActivityKind.Server);
        span?.SetTag(TagNames.Role, _role);
        span?.SetTag(TagNames.NetworkTransport, "udp");
        span?.SetTag(TagNames.NetworkPeerAddress, client.Address.ToString());
        span?.SetTag(TagNames.NetworkPeerPort, client.Port);
        if (span is not null && key is Core.Protocol.Udp2022ServerSession session)
        {
            // A 2022 server's association is a client session: which one, and a multi-user server's user.
            span.SetTag(TagNames.SessionId, session.ClientSessionId.ToString("x16", System.Globalization.CultureInfo.InvariantCulture));
            if (session.User is { } user)
            {
                span.SetTag(TagNames.UserName, user.Name);
            }
        }

        Socket outbound;
        try
        {
            outbound = _openOutbound(client);
        }
        catch
        {
            span?.Dispose();
            throw;
        }

        var entry = new UdpNatEntry(outbound, span);
        try
        {
            entry.Receiving = UdpReceiver.Start(_loop, entry.Outbound, _back, reply => Stamp(key, entry, reply), Direction.Downstream);
        }
        catch
        {
            entry.Dispose();
            throw;
        }

        return entry;
    }

    /// <summary>A reply: remember where it came from, address it to the key's client (and session), and keep the entry alive.</summary>
    private bool Stamp(TKey key, UdpNatEntry entry, Datagram reply)
    {
        reply.Target = Core.Protocol.ShadowsocksAddress.FromEndPoint(reply.Client);
        reply.Client = _clientOf(key);
        reply.Session = key as Core.Protocol.Udp2022ServerSession;
        entry.CountBack();
        _entries.TryGet(key, out _);
        return true;
    }
}
