using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Shadowsocks.Pipeline.Core.Diagnostics;

/// <summary>The one <see cref="ActivitySource"/> and <see cref="Meter"/> of the program, and its instruments.</summary>
internal static class PipelineTelemetry
{
    public const string Name = "Shadowsocks.Pipeline";

    public static readonly ActivitySource Source = new(Name, "1.0.0");

    public static readonly Meter Meter = new(Name, "1.0.0");

    /// <summary>
    /// Starts the root span of a connection or association: a trace of its own, whatever span is ambient (without
    /// this, the accept loop's <see cref="Activity.Current"/> — the previous connection's root — became the parent and
    /// every connection of a run landed in one trace). The caller's ambient span is left as it was.
    /// </summary>
    public static Activity? StartRoot(string name, ActivityKind kind)
    {
        var ambient = Activity.Current;
        Activity.Current = null;
        try
        {
            return Source.StartActivity(name, kind, parentContext: default);
        }
        finally
        {
            Activity.Current = ambient;
        }
    }

    public static readonly Counter<long> BytesRelayed = Meter.CreateCounter<long>("pipeline.bytes_relayed", "By",
        "Bytes relayed, added as each TCP chunk or UDP datagram is sent on (what that side sends: ciphertext where it encrypts, plaintext where it decrypts), "
        + "by pipeline.direction and network.transport (tcp, udp); by user.name on a multi-user 2022 server (TCP and UDP) or a local with --socks5-auth (TCP).");

    public static readonly UpDownCounter<long> ActiveConnections = Meter.CreateUpDownCounter<long>("pipeline.active_connections", "{connection}", "Open relayed connections, by shadowsocks.role (local, server, tunnel).");

    public static readonly Counter<long> ConnectionsAccepted = Meter.CreateCounter<long>("pipeline.connections_accepted", "{connection}",
        "TCP connections accepted, by shadowsocks.role (local, server, tunnel); those refused at once (pipeline.connections_refused) included.");

    public static readonly Counter<long> HandshakeFailures = Meter.CreateCounter<long>("pipeline.handshake_failures", "{connection}", "SOCKS5 or Shadowsocks handshakes that failed.");

    public static readonly Counter<long> AuthenticationFailures = Meter.CreateCounter<long>("pipeline.authentication_failures", "{failure}",
        "Shadowsocks streams (network.transport tcp: one a connection) or packets (udp: one a datagram) that failed to authenticate, or were replayed.");

    public static readonly Counter<long> Socks5AuthenticationFailures = Meter.CreateCounter<long>("pipeline.socks5.authentication_failures", "{connection}",
        "Local with --socks5-auth: SOCKS5 clients refused at login, by pipeline.reason: a wrong user name or password, no username/password offered, or a malformed login.");

    public static readonly Counter<long> ServerConnectFailures = Meter.CreateCounter<long>("pipeline.server_connect_failures", "{connection}",
        "Connections a local or tunnel could not open to its server (every server and retry failed), by pipeline.reason (refused, timed_out, unreachable, lookup_failed: "
        + "a server name that did not resolve) and server.address (the server whose attempt failed last).");

    public static readonly Counter<long> ServerCircuitChanges = Meter.CreateCounter<long>("pipeline.server_circuit_changes", "{change}",
        "A local's or tunnel's fallback servers: one skipped because its last attempts failed (pipeline.circuit_state open; pipeline.reason refused, timed_out, unreachable "
        + "or lookup_failed), or back in use (closed; pipeline.reason answered), by server.address.");

    public static readonly Counter<long> UdpServerMoves = Meter.CreateCounter<long>("pipeline.udp.server_moves", "{move}",
        "A local's or tunnel's UDP moving to another of its servers as it follows TCP's circuits, by pipeline.direction: away (the server in use is skipped), "
        + "back (an earlier server answers again). Never the servers themselves, which the log line names.");

    public static readonly Counter<long> ForbiddenDestinations = Meter.CreateCounter<long>("pipeline.forbidden_destinations", "{request}",
        "Server: connections and datagrams refused because every address of their destination is on --forbidden-ip (by default loopback and ::1).");

    public static readonly Counter<long> DestinationFailures = Meter.CreateCounter<long>("pipeline.destination_failures", "{connection}",
        "Server (and a local's direct connections under --acl): TCP connections whose destination could not be reached, by pipeline.reason: "
        + "lookup_failed (the name did not resolve), forbidden (--forbidden-ip or the ACL's outbound_block_list), refused, timed_out, unreachable (another connect error).");

    public static readonly Counter<long> AcceptsPostponed = Meter.CreateCounter<long>("pipeline.accepts_postponed", "{accept}", "Accepts put off for a moment because the process had no file descriptor (or kernel buffer) to spare: raise nofile.");

    public static readonly Counter<long> ConnectionsReset = Meter.CreateCounter<long>("pipeline.connections_reset", "{connection}",
        "TCP connections that one side ended abnormally, passed on to the other side as a reset: by the side that broke (pipeline.side: client, remote) and how (pipeline.reason: reset, send_failed, authentication_failed).");

    public static readonly Counter<long> ConnectionsRefused = Meter.CreateCounter<long>("pipeline.connections_refused", "{connection}",
        "TCP connections closed at once after the accept, by pipeline.reason: capacity (the first stage was full), acl (a client --acl does not admit), error (a bug).");

    public static readonly Counter<long> UdpDatagrams = Meter.CreateCounter<long>("pipeline.udp.datagrams", "{datagram}", "UDP datagrams received, by pipeline.direction: relay.upstream (from clients), relay.downstream (replies from servers or destinations).");

    public static readonly Counter<long> UdpDropped = Meter.CreateCounter<long>("pipeline.udp.dropped", "{datagram}", "UDP datagrams dropped, by reason.");

    public static readonly UpDownCounter<long> UdpAssociations = Meter.CreateUpDownCounter<long>("pipeline.udp.associations", "{association}", "Open UDP associations (NAT entries).");

    public static readonly Counter<long> TelemetryExportFailures = Meter.CreateCounter<long>("pipeline.telemetry_export_failures", "{export}",
        "OTLP exports (a batch of spans or metrics) the collector did not take, by pipeline.reason: refused, timed_out, lookup_failed, unreachable, tls, protocol, http_4xx (and the other status classes), grpc_error, other.");

    public static readonly Counter<long> TraceFileFailures = Meter.CreateCounter<long>("pipeline.trace_file_failures", "{export}",
        "Batches of spans that could not be written to the trace file (--traces) and were dropped, by pipeline.reason: disk_full (a full disk, a quota), permission, io, other.");

    public static readonly Counter<long> StageFaults = Meter.CreateCounter<long>("pipeline.stage_faults", "{fault}", "Connections failed, or UDP datagrams dropped, because a shared stage's work threw unexpectedly (a bug: the stage went on serving the others), by stage (a UDP stage's name starts with udp.).");

    public static readonly Counter<long> LoopHandlerFailures = Meter.CreateCounter<long>("pipeline.loop.handler_failures", "{failure}", "Readiness handlers on an event loop that threw (a bug: the loop went on serving the other sockets).");

    public static readonly Counter<long> DnsCacheHits = Meter.CreateCounter<long>("pipeline.dns.cache_hits", "{lookup}", "Lookups answered from the DNS cache.");

    public static readonly Counter<long> DnsCacheMisses = Meter.CreateCounter<long>("pipeline.dns.cache_misses", "{lookup}", "Lookups that needed a query (or joined one in flight).");

    public static readonly Counter<long> DnsIgnored = Meter.CreateCounter<long>("pipeline.dns.ignored", "{message}", "DNS messages ignored: unknown ID, wrong source, wrong question or malformed.");
}
