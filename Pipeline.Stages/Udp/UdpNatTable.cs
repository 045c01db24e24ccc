using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// Client endpoint → <see cref="UdpNatEntry"/>, on the LRU cache: entries expire <c>udp_timeout</c> after their last
/// datagram either way (sliding), the least recently used goes when the table is full, and every entry that leaves
/// closes its socket. Replies received on an entry's socket are stamped with the client and offered to <c>back</c>.
/// </summary>
internal sealed class UdpNatTable : IDisposable
{
    private readonly LruCache<IPEndPoint, UdpNatEntry> _entries;
    private readonly Func<IPEndPoint, Socket> _openOutbound;
    private readonly ITargetBlock<Datagram> _back;
    private readonly EventLoop _loop;
    private readonly string _role;
    private readonly Func<IPEndPoint, bool>? _admits;
    private readonly object _admission = new();

    /// <param name="openOutbound">Makes the outbound socket for a new client (connected to the server, or unconnected).</param>
    /// <param name="back">The first stage of the way back (replies toward the client).</param>
    /// <param name="loop">Where the entries' sockets are received on.</param>
    /// <param name="admits">
    /// Whether a client may have a new entry (local: it holds a live association). Asked as the entry would be made,
    /// under the same lock as <see cref="RemoveClient"/>, so an association that ends while its last datagram is on
    /// the way leaves no entry behind.
    /// </param>
    public UdpNatTable(
        int capacity, TimeSpan timeout, IScheduler scheduler, Func<IPEndPoint, Socket> openOutbound, ITargetBlock<Datagram> back, EventLoop loop, string role,
        Func<IPEndPoint, bool>? admits = null)
    {
        _admits = admits;
        _loop = loop;
        _openOutbound = openOutbound;
        _back = back;
        _role = role;
        _entries = new LruCache<IPEndPoint, UdpNatEntry>(capacity, timeout, sliding: true, scheduler, static (_, entry, _) => entry.Dispose());
    }

    public int Count => _entries.Count;

    /// <summary>
    /// The client's entry, made (socket opened, reply loop started) on its first datagram; null when the client may
    /// not have one (see the constructor's <c>admits</c>).
    /// </summary>
    public UdpNatEntry? GetOrAdd(IPEndPoint client)
    {
        if (_admits is null)
        {
            return _entries.GetOrAdd(client, Open);
        }

        lock (_admission)
        {
            return _entries.TryGet(client, out var entry) ? entry : _admits(client) ? _entries.GetOrAdd(client, Open) : null;
        }
    }

    /// <summary>Ends every association of one client address (its SOCKS5 control connection closed).</summary>
    public int RemoveClient(IPAddress address)
    {
        lock (_admission)
        {
            return _entries.RemoveWhere(endPoint => endPoint.Address.Equals(address));
        }
    }

    public void Dispose() => _entries.Dispose();

    private UdpNatEntry Open(IPEndPoint client)
    {
        var span = PipelineTelemetry.StartRoot("udp.association", ActivityKind.Server);
        span?.SetTag(TagNames.Role, _role);
        span?.SetTag(TagNames.NetworkTransport, "udp");
        span?.SetTag(TagNames.NetworkPeerAddress, client.Address.ToString());
        span?.SetTag(TagNames.NetworkPeerPort, client.Port);
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

        var entry = new UdpNatEntry(client, outbound, span);
        try
        {
            entry.Receiving = UdpReceiver.Start(_loop, entry.Outbound, _back, reply => Stamp(entry, reply), "back");
        }
        catch
        {
            entry.Dispose();
            throw;
        }

        return entry;
    }

    /// <summary>A reply: remember where it came from, address it to the entry's client, and keep the entry alive.</summary>
    private bool Stamp(UdpNatEntry entry, Datagram reply)
    {
        reply.Target = Core.Protocol.ShadowsocksAddress.FromEndPoint(reply.Client);
        reply.Client = entry.Client;
        entry.CountBack();
        _entries.TryGet(entry.Client, out _);
        return true;
    }
}
