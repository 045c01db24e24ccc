using System.Net;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>Everything one relay (local, server or tunnel) needs, already validated.</summary>
internal sealed record RelayOptions
{
    /// <summary>Where to listen (local: the SOCKS5 port; server: the Shadowsocks port; tunnel: the forwarded port).</summary>
    public required IPEndPoint Listen { get; init; }

    /// <summary>
    /// Server: further addresses to listen on, on the same port (a config's <c>"server": ["::1", "127.0.0.1"]</c>, or
    /// <c>-s</c> given more than once: ss-server listens on each). They share the relay's stages and replay filter.
    /// </summary>
    public IReadOnlyList<IPEndPoint> MoreListens { get; init; } = [];

    public required CipherInfo Cipher { get; init; }

    /// <summary>The master key (EVP_BytesToKey of the password, or the --key bytes).</summary>
    public required byte[] MasterKey { get; init; }

    /// <summary>
    /// Local and tunnel, 2022 AES methods (SIP023): the identity keys (iPSKs) of the hops before the user's server, in
    /// order, the first hop's first; <see cref="MasterKey"/> is then the user's key (uPSK). From a password of the form
    /// <c>iPSK:...:uPSK</c>, as shadowsocks-rust reads it. Empty: no identity headers.
    /// </summary>
    public IReadOnlyList<byte[]> IdentityKeys { get; init; } = [];

    /// <summary>
    /// Server, 2022 AES methods (SIP023): the users it serves on its one port, each with its own key (uPSK);
    /// <see cref="MasterKey"/> is then the server's identity key (iPSK), and every request must name its user in an
    /// identity header. Empty: one key, no identity headers.
    /// </summary>
    public IReadOnlyList<UserKey> Users { get; init; } = [];

    /// <summary>Local and tunnel: the Shadowsocks server.</summary>
    public EndPoint? Server { get; init; }

    /// <summary>Local and tunnel: more servers (same method and key), tried in order when <see cref="Server"/> fails or its circuit is open.</summary>
    public IReadOnlyList<EndPoint> FallbackServers { get; init; } = [];

    /// <summary>Tunnel: the fixed destination (-L).</summary>
    public ShadowsocksAddress? TunnelDestination { get; init; }

    /// <summary>
    /// What the relay's busy connections read at once: their full-size reads shrink from 128 KiB toward 16 KiB as more
    /// are busy together (<see cref="Multiplexing.ReadBudget"/>). Shared by every listener of the relay.
    /// </summary>
    public Multiplexing.ReadBudget ReadBudget { get; init; } = new(Multiplexing.ReadBudget.DefaultBytes);

    /// <summary>Idle timeout of a relayed connection (-t; ss-libev's default is 60 s).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Local: how long a SOCKS5 client may take to finish its handshake, from the accept. The server waits for a
    /// client's header as long as for its other bytes (<see cref="IdleTimeout"/>: probe resistance); a tunnel's clients
    /// have no handshake.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Timeout of one outbound connect (<c>connect_timeout</c>): the server's to a destination, all its addresses
    /// together (and the most a connection waits for a lookup slot, from its header); the local's and tunnel's per
    /// attempt to a server; the local's direct connections (<c>--acl</c>).
    /// </summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Retries of a failed connect to the Shadowsocks server (local and tunnel).</summary>
    public int ConnectRetries { get; init; } = 2;

    /// <summary>
    /// TCP Fast Open (<c>fast_open</c>, <c>--fast-open</c>): the local and the tunnel send the header and first data in
    /// the SYN to the server (<c>TCP_FASTOPEN_CONNECT</c>), the server accepts such data (<c>TCP_FASTOPEN</c> on its
    /// listener). The kernel must allow it: <c>net.ipv4.tcp_fastopen</c> bit 1 for sending, bit 2 for accepting.
    /// </summary>
    public bool FastOpen { get; init; }

    /// <summary>
    /// <c>reuse_port</c> (<c>--reuse-port</c>): the listeners (TCP and UDP) bind with <c>SO_REUSEPORT</c>, so several
    /// processes can listen on one port (the kernel spreads new connections across them): a new version can start
    /// before the old one stops.
    /// </summary>
    public bool ReusePort { get; init; }

    /// <summary>
    /// A listen address <c>::</c> takes IPv6 only (<c>IPV6_V6ONLY</c>), not IPv4 as well. Set when a server also listens
    /// on an IPv4 address (ss-libev's <c>"server": ["::0", "0.0.0.0"]</c>, from its manual: a dual-stack <c>::</c> would
    /// hold the IPv4 port too, and the second bind would fail), or by <c>ipv6_only</c> (shadowsocks-rust's key). Alone,
    /// <c>::</c> takes both, as with shadowsocks-rust.
    /// </summary>
    public bool ListenIpv6Only { get; init; }

    /// <summary>
    /// <c>mptcp</c> (<c>--mptcp</c>): Multipath TCP on the Shadowsocks hop: the server's listener and the local's and
    /// tunnel's connections to the server (a peer without it gets plain TCP).
    /// </summary>
    public bool Mptcp { get; init; }

    /// <summary>
    /// <c>-i IFACE</c> (<c>interface</c>): outbound sockets leave by this network interface (<c>SO_BINDTODEVICE</c>): the
    /// server's toward destinations, the local's and tunnel's toward the server; TCP and UDP. Null: the routing table's choice.
    /// </summary>
    public string? OutboundInterface { get; init; }

    /// <summary>
    /// The source address of outbound connections and datagrams, for those of its family: the server's toward
    /// destinations (<c>-b</c> / <c>local_address</c>, as ss-server's), the local's and tunnel's toward the server
    /// (<c>outbound_bind_addr</c>, shadowsocks-rust's name, which the server takes too). Null: the kernel's choice.
    /// </summary>
    public IPAddress? OutboundAddress { get; init; }

    /// <summary>
    /// Server: the ACL (<c>--acl</c>): which clients it serves (TCP and UDP) and which destinations it refuses
    /// (<c>outbound_block_list</c>). Null: none.
    /// </summary>
    public AccessControlList? Acl { get; init; }

    /// <summary>
    /// Local: the SOCKS5 users (<c>socks5_auth</c>, <c>--socks5-auth FILE</c>): a client must log in as one (RFC 1929
    /// username/password) before its request is read, and a client that does not offer to is refused. Null: no
    /// authentication, as ss-local.
    /// </summary>
    public Socks5Users? Socks5Users { get; init; }

    /// <summary>Prefer IPv6 results when resolving (-6).</summary>
    public bool Ipv6First { get; init; }

    /// <summary>At most this many TCP connections at once; beyond it new ones wait in the listen backlog (<c>max_connections</c>).</summary>
    public int MaxConnections { get; init; } = 10_000;

    /// <summary>How long a UDP association (NAT entry) lives after its last datagram (<c>udp_timeout</c>).</summary>
    public TimeSpan UdpTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>At most this many UDP associations; the least recently used one is closed to make room.</summary>
    public int UdpMaxAssociations { get; init; } = 4096;

    /// <summary>Server: destinations it refuses after resolving (the host defaults this to loopback; none here).</summary>
    public ForbiddenAddresses Forbidden { get; init; } = ForbiddenAddresses.None;

    /// <summary>Server: salts remembered against replay (ss-libev's default), and the false-positive rate.</summary>
    public int ReplayFilterCapacity { get; init; } = 1_000_000;

    public double ReplayFilterErrorRate { get; init; } = 1e-6;

    public PipelineOptions Pipeline { get; init; } = PipelineOptions.Default;
}
