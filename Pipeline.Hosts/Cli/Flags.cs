namespace Shadowsocks.Pipeline.Hosts.Cli;

/// <summary>Every flag of every verb, with the configuration key each sets.</summary>
internal static class Flags
{
    private const string LocalVerb = "local";
    private const string ServerVerb = "server";
    private const string TunnelVerb = "tunnel";

    public static readonly Flag Config = new("--config", "-c", null, "FILE", "config.json (shadowsocks-libev / shadowsocks-rust keys); flags, SHADOWSOCKS_* variables and --server-url win over it");
    public static readonly Flag ServerUrl = new("--server-url", null, null, "ss://...", "the server as a SIP002 URL (method, password, host and port); flags win over it");
    public static readonly Flag PasswordEnv = new("--password-env", null, null, "VAR", "read the password from environment variable VAR (SHADOWSOCKS_PASSWORD is read anyway)");
    public static readonly Flag Server = new("--server", "-s", "server", "ADDR", "server: address to listen on (default 0.0.0.0); local/tunnel: the server (repeat for failover)");
    public static readonly Flag ServerPort = new("--server-port", "-p", "server_port", "PORT", "the server's port");
    public static readonly Flag LocalAddress = new("--local-address", "-b", "local_address", "ADDR", "local/tunnel: address to listen on (default 127.0.0.1); server: source address of its outbound connections (as ss-server's -b)");
    public static readonly Flag Interface = new("--interface", "-i", "interface", "IFACE", "network interface outbound sockets leave by (SO_BINDTODEVICE; server: toward destinations, local/tunnel: toward the server)");
    public static readonly Flag LocalPort = new("--local-port", "-l", "local_port", "PORT", "local/tunnel: port to listen on", OnlyFor: [LocalVerb, TunnelVerb]);
    public static readonly Flag Password = new("--password", "-k", "password", "PASSWORD", "password (the key is derived with EVP_BytesToKey); prefer SHADOWSOCKS_PASSWORD or --password-env");
    public static readonly Flag Key = new("--key", null, "key", "BASE64", "the key itself: base64 of exactly the method's key length (shadowsocks genkey -m METHOD)");
    public static readonly Flag Method = new("--method", "-m", "method", "METHOD", "encryption method (default chacha20-ietf-poly1305; list: shadowsocks methods)");
    /// <summary>The demo's -m: it runs aes-256-gcm unless told otherwise (<see cref="Verbs.DemoVerb"/>).</summary>
    public static readonly Flag DemoMethod = Method with { Help = "encryption method (default aes-256-gcm; list: shadowsocks methods)" };

    /// <summary>genkey's -m: there is no default method to make a key for.</summary>
    public static readonly Flag GenKeyMethod = Method with { Help = "the method to make a key for (required; list: shadowsocks methods)" };

    public static readonly Flag Timeout = new("--timeout", "-t", "timeout", "SECONDS", "idle timeout of a TCP connection (default 60)");
    public static readonly Flag TunnelAddress = new("--tunnel-address", "-L", "tunnel_address", "HOST:PORT", "tunnel: the fixed destination", OnlyFor: [TunnelVerb]);
    public static readonly Flag Nameserver = new("--nameserver", "-d", "nameserver", "ADDR[:PORT],...", "DNS servers (server: destinations; local/tunnel: a server given by name; default: /etc/resolv.conf)");
    public static readonly Flag TcpAndUdp = new("--tcp-and-udp", "-u", "mode", null, "relay TCP and UDP (config mode: tcp_and_udp)", "tcp_and_udp");
    public static readonly Flag UdpOnly = new("--udp-only", "-U", "mode", null, "relay UDP only (config mode: udp_only)", "udp_only");
    public static readonly Flag Ipv6First = new("--ipv6-first", "-6", "ipv6_first", null, "prefer IPv6 answers when resolving", "true");
    public static readonly Flag Verbose = new("--verbose", "-v", "verbose", null, "debug output; prints the pipeline settings in effect", "true");
    public static readonly Flag ForbiddenIp = new("--forbidden-ip", null, "forbidden_ip", "LIST", "server: destinations refused, addresses or CIDR, comma-separated (default 127.0.0.0/8,::1/128; '' allows all)", OnlyFor: [ServerVerb]);
    public static readonly Flag MaxConnections = new("--max-connections", null, "max_connections", "N", "TCP connections at once before new ones wait (default 10000; fitted to the open-file limit)");
    public static readonly Flag HandshakeTimeout = new("--handshake-timeout", null, "handshake_timeout", "SECONDS", "local: time for a SOCKS5 client's greeting, login and request, from the accept (default 10)", OnlyFor: [LocalVerb]);
    public static readonly Flag ConnectTimeout = new("--connect-timeout", null, "connect_timeout", "SECONDS", "time for an outbound connect (default 10); server: to a destination, and the most a connection waits for a lookup slot; local/tunnel: each attempt to a server, and the local's direct (--acl) connections");
    public static readonly Flag UdpTimeout = new("--udp-timeout", null, "udp_timeout", "SECONDS", "a UDP association closes this long after its last datagram (default 300)");
    public static readonly Flag UdpMaxAssociations = new("--udp-max-associations", null, "udp_max_associations", "N", "UDP associations at once; the least recently used gives way (default 4096)");
    public static readonly Flag Traces = new("--traces", null, "telemetry:traces", "DIR", "write OTLP/JSON trace files into DIR (Jaeger: Search -> Upload)");
    public static readonly Flag Metrics = new("--metrics", null, "telemetry:metrics_listen", "ADDR:PORT", "serve Prometheus metrics at http://ADDR:PORT/metrics (no authentication: loopback, or behind a firewall)");
    public static readonly Flag ShutdownGrace = new("--shutdown-grace", null, "shutdown_grace", "SECONDS", "on SIGINT/SIGTERM, how long open connections may finish after the listener closes (default 10)");
    public static readonly Flag PidFile = new("--pid-file", "-f", "pid_file", "FILE", "run in the background and write the pid to FILE (removed on exit)");
    public static readonly Flag FastOpen = new("--fast-open", null, "fast_open", null, "TCP Fast Open to the server: first data in the SYN (needs net.ipv4.tcp_fastopen=3 on the server's host)", "true");
    public static readonly Flag ReusePort = new("--reuse-port", null, "reuse_port", null, "SO_REUSEPORT: several processes may listen on the port (restart without a gap)", "true");
    public static readonly Flag NoDelay = new("--no-delay", null, "no_delay", null, "accepted for compatibility; TCP_NODELAY is always set", "true", Hidden: true);
    public static readonly Flag Mptcp = new("--mptcp", null, "mptcp", null, "Multipath TCP between local/tunnel and server (Linux 5.6+, net.mptcp.enabled=1)", "true");
    public static readonly Flag User = new("--user", "-a", "user", "USER", "go on as USER once the ports are open (started as root; systemd's User= works too)");
    public static readonly Flag Nofile = new("--nofile", "-n", "nofile", "N", "open-file limit (each connection holds two; default: raise the soft limit to the hard one)");
    public static readonly Flag Mtu = new("--mtu", null, "mtu", "N", "accepted for compatibility; no effect", Hidden: true);
    public static readonly Flag ManagerAddress = new("--manager-address", null, "manager_address", "ADDR", "server: report traffic to ss-manager every 10 s (a UNIX socket path, or HOST:PORT), as ss-server does", OnlyFor: [ServerVerb]);
    public static readonly Flag Acl = new("--acl", null, "acl", "FILE", "an ACL file in ss-libev's format; server: clients refused or admitted, destinations blocked; local: destinations reached directly (bypass) or through the server");
    public static readonly Flag Socks5Auth = new("--socks5-auth", null, "socks5_auth", "FILE", "local: SOCKS5 clients must log in (RFC 1929 username/password) as a user of FILE, one user:password a line (SIGHUP reloads it)", OnlyFor: [LocalVerb]);
    public static readonly Flag Plugin = new("--plugin", null, "plugin", "PROGRAM", "SIP003 plugin the TCP side goes through (e.g. obfs-server / obfs-local); UDP goes straight to the server");
    public static readonly Flag PluginOpts = new("--plugin-opts", null, "plugin_opts", "OPTS", "the plugin's options, handed over as SS_PLUGIN_OPTIONS (e.g. \"obfs=http;obfs-host=example.com\")");
    public static readonly Flag Check = new("--check", null, null, null, "exit after the self-check");

    /// <summary>The flags of local, server and tunnel (one set, as ss-libev's programs share theirs).</summary>
    public static readonly IReadOnlyList<Flag> Relay =
    [
        Config, ServerUrl, Server, ServerPort, LocalAddress, Interface, LocalPort, Password, PasswordEnv, Key, Method, Timeout, TunnelAddress,
        Nameserver, TcpAndUdp, UdpOnly, Ipv6First, Verbose, ForbiddenIp, MaxConnections, HandshakeTimeout, ConnectTimeout, UdpTimeout,
        UdpMaxAssociations, ShutdownGrace, Traces, Metrics, PidFile, FastOpen, ReusePort, NoDelay, Mptcp, User, Nofile, Mtu, ManagerAddress, Acl, Socks5Auth, Plugin, PluginOpts,
    ];

    public static readonly IReadOnlyList<Flag> Demo = [DemoMethod, Traces, Verbose, Check];

    public static readonly IReadOnlyList<Flag> GenKey = [GenKeyMethod];
}
