using System.Net;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// Local: the live SOCKS5 UDP ASSOCIATEs (RFC 1928 § 7: an association lasts as long as the TCP connection that asked
/// for it) and the client endpoints each one sends from. Datagrams are taken only from an address that holds one
/// (<see cref="Contains"/>): the control connection's, and the one its request named in DST.ADDR, if any (RFC 1928
/// § 7: "the address ... that the client expects to use to send UDP datagrams on for the association"). A client endpoint is attached to one association as its NAT entry is made
/// (<see cref="Attach"/>): the association whose request named that port, else the oldest of its address that has
/// no endpoint yet (one that named port 0 first), else the newest of its address. When an association ends,
/// <c>ended</c> gets the endpoints attached to it, so their NAT entries (and sockets) close at once, while the other
/// associations of the same address go on.
/// </summary>
/// <remarks>
/// Before, entries were kept per address: on a desktop, where every client is 127.0.0.1, the sockets of closed
/// associations stayed open for <c>udp_timeout</c> and their ports went on relaying as long as any other association
/// lived. Clients are not refused for sending from a port other than the one they named (RFC 1928 allows it, ss-local
/// and shadowsocks-rust take any datagram, and some clients name the destination there); two clients of one address
/// that both name port 0 are told apart only by the order above, so a datagram from an endpoint whose association
/// ended is taken again (attached to another live association of its address) if its client goes on sending.
/// </remarks>
internal sealed class UdpAssociations(Action<IReadOnlySet<IPEndPoint>> ended)
{
    private readonly object _lock = new();
    private readonly Dictionary<IPAddress, List<Association>> _byAddress = [];
    private readonly Dictionary<IPEndPoint, Association> _owners = [];

    public bool Contains(IPAddress address)
    {
        lock (_lock)
        {
            return _byAddress.ContainsKey(address);
        }
    }

    /// <summary>A control connection from <paramref name="address"/> asked for an association; <paramref name="port"/>
    /// is the DST.PORT of its request (0: the client did not say), <paramref name="declared"/> its DST.ADDR when that
    /// names another address than the connection's (a client on several addresses; null or 0.0.0.0 / <c>::</c>: not said).</summary>
    public IDisposable Register(IPAddress address, int port, IPAddress? declared = null)
    {
        IPAddress[] addresses = declared is null || declared.Equals(IPAddress.Any) || declared.Equals(IPAddress.IPv6Any) || declared.Equals(address)
            ? [address]
            : [address, declared];
        var association = new Association(addresses, port);
        lock (_lock)
        {
            foreach (var each in addresses)
            {
                if (!_byAddress.TryGetValue(each, out var live))
                {
                    _byAddress[each] = live = [];
                }

                live.Add(association);
            }
        }

        return new Registration(this, association);
    }

    /// <summary>
    /// Attaches <paramref name="client"/> to an association of its address (see the class summary); false when its
    /// address holds none.
    /// </summary>
    public bool Attach(IPEndPoint client)
    {
        lock (_lock)
        {
            if (_owners.ContainsKey(client))
            {
                return true;
            }

            if (!_byAddress.TryGetValue(client.Address, out var live))
            {
                return false;
            }

            var owner = live.Find(a => a.Port == client.Port)
                ?? live.Find(a => a.Port == 0 && a.Endpoints.Count == 0)
                ?? live.Find(a => a.Endpoints.Count == 0)
                ?? live[^1];
            owner.Endpoints.Add(client);
            _owners[client] = owner;
            return true;
        }
    }

    /// <summary>
    /// <paramref name="client"/>'s NAT entry is gone (expired, evicted, or its association ended): it belongs to no
    /// association any more, so an association's endpoints stay the ones it is sending from (a client that used a new
    /// port per datagram grew its set for as long as the association lived), and the port, if it comes back, is
    /// attached afresh.
    /// </summary>
    public void Detach(IPEndPoint client)
    {
        lock (_lock)
        {
            if (_owners.Remove(client, out var owner))
            {
                owner.Endpoints.Remove(client);
            }
        }
    }

    /// <summary>How many client endpoints are attached to live associations (for tests).</summary>
    internal int AttachedCount
    {
        get
        {
            lock (_lock)
            {
                return _owners.Count;
            }
        }
    }

    private void Unregister(Association association)
    {
        lock (_lock)
        {
            foreach (var address in association.Addresses)
            {
                var live = _byAddress[address];
                live.Remove(association);
                if (live.Count == 0)
                {
                    _byAddress.Remove(address);
                }
            }

            foreach (var endpoint in association.Endpoints)
            {
                _owners.Remove(endpoint);
            }
        }

        // No longer live, so nothing attaches to it any more: its endpoints are final.
        if (association.Endpoints.Count > 0)
        {
            ended(association.Endpoints);
        }
    }

    private sealed class Association(IPAddress[] addresses, int port)
    {
        /// <summary>The control connection's address, and the request's DST.ADDR when it named another.</summary>
        public IPAddress[] Addresses { get; } = addresses;

        public int Port { get; } = port;

        public HashSet<IPEndPoint> Endpoints { get; } = [];
    }

    private sealed class Registration(UdpAssociations owner, Association association) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Unregister(association);
            }
        }
    }
}
