using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Hosts.Configuration;

/// <summary>
/// The validated settings of one relay verb, from config.json, --server-url, SHADOWSOCKS_* variables and the command
/// line, each winning over the one before (<see cref="LayeredSettings"/>). Every error is a <see cref="UsageException"/> with one line naming the flag or field and the fix.
/// </summary>
internal sealed record HostSettings(RelayOptions Relay, RelayMode Mode, bool Verbose, IPEndPoint[]? Nameservers = null)
{
    /// <summary>ss-libev's default method.</summary>
    public const string DefaultMethod = "chacha20-ietf-poly1305";

    /// <summary>ss-libev's default idle timeout, seconds.</summary>
    public const int DefaultTimeoutSeconds = 60;

    /// <summary>TCP connections open at once before new ones wait (<c>--max-connections</c>, config <c>max_connections</c>).</summary>
    public const int DefaultMaxConnections = 10_000;

    /// <summary>Seconds a local's SOCKS5 client may take for its greeting and request (<c>--handshake-timeout</c>, config <c>handshake_timeout</c>; a server's or tunnel's has none).</summary>
    public const int DefaultHandshakeTimeoutSeconds = 10;

    /// <summary>
    /// Seconds an outbound connect may take (<c>--connect-timeout</c>, config <c>connect_timeout</c>): the server's to a
    /// destination (and the most a connection waits for a lookup slot), the local's and tunnel's per attempt to a server.
    /// </summary>
    public const int DefaultConnectTimeoutSeconds = 10;

    /// <summary>How long a UDP association lives after its last datagram, seconds (config <c>udp_timeout</c>).</summary>
    public const int DefaultUdpTimeoutSeconds = 300;

    /// <summary>The most UDP associations at once (config <c>udp_max_associations</c>); the least recently used gives way.</summary>
    public const int DefaultUdpMaxAssociations = 4096;

    /// <summary>Seconds open connections may take to finish after SIGINT/SIGTERM (<c>--shutdown-grace</c>, config <c>shutdown_grace</c>).</summary>
    public const int DefaultShutdownGraceSeconds = 10;

    private const string MissingServerPort = "-p: missing server port (or \"server_port\" in the config file)";

    /// <summary>
    /// Keys that exist only inside an object (<c>telemetry</c>, <c>pipeline</c>), by their own name: given at the top
    /// level, they are pointed to where they go.
    /// </summary>
    private static readonly Dictionary<string, string> s_nestedOnly = new(StringComparer.OrdinalIgnoreCase)
    {
        ["traces"] = "telemetry",
        ["otlp_endpoint"] = "telemetry",
        ["otlp_protocol"] = "telemetry",
        ["metrics_listen"] = "telemetry",
        ["read_budget_mib"] = "pipeline",
    };

    /// <summary>The environment variable read for the password when neither -k nor --key nor the file gives one.</summary>
    public const string PasswordVariable = "SHADOWSOCKS_PASSWORD";

    /// <summary>Builds the settings from the process's environment (see <see cref="LayeredSettings"/>).</summary>
    public static HostSettings Build(string verb, ParsedArguments args) => Build(verb, args, ProcessEnvironment());

    public static HostSettings Build(string verb, ParsedArguments args, IReadOnlyDictionary<string, string?> environment)
    {
        var settings = LayeredSettings.Build(args, environment);
        // Said before a refusal too: a key misspelt in the file ("sever_port") is often why a required one is missing.
        var settingsWarnings = SettingsWarnings(settings, verb).ToList();
        try
        {
            return Build(verb, settings, environment, settingsWarnings);
        }
        catch (UsageException e) when (settingsWarnings.Count > 0)
        {
            throw new UsageException(e.Message) { Warnings = settingsWarnings };
        }
    }

    private static HostSettings Build(string verb, LayeredSettings settings, IReadOnlyDictionary<string, string?> environment, List<string> settingsWarnings)
    {
        var methodKey = SharedKey(settings, "method");
        var methodName = settings.String(methodKey) switch
        {
            null => DefaultMethod,
            { Length: 0 } => throw new UsageException($"{settings.Label(methodKey)} '' is not a method; give one (`shadowsocks methods` lists them) or leave it out for {DefaultMethod}"),
            var m => m,
        };
        if (!CipherCatalog.TryGet(methodName, out var cipher, out var methodError))
        {
            throw new UsageException(Relabel(settings, methodKey, methodError!));
        }

        var (key, identityKeys) = Keys(settings, cipher, verb);
        CheckOneSecret(settings, cipher, key, identityKeys);
        var users = Users(settings, cipher, verb);
        var timeout = settings.Int("timeout", 1, 86_400) ?? DefaultTimeoutSeconds;
        var udpTimeout = settings.Int("udp_timeout", 1, 86_400) ?? DefaultUdpTimeoutSeconds;
        var udpMaxSet = settings.Int("udp_max_associations", 1, 1_000_000);
        var udpMax = udpMaxSet ?? DefaultUdpMaxAssociations;
        var maxConnectionsSet = settings.Int("max_connections", 1, 10_000_000);
        var maxConnections = maxConnectionsSet ?? DefaultMaxConnections;
        // Only a local's handshake is timed: a server or tunnel neither reads nor checks it (a config file shared with a
        // local may carry it; a bad value there is the local's to refuse), and says so once given on its command line.
        var handshakeTimeout = verb == "local" ? settings.Int("handshake_timeout", 1, 3600) ?? DefaultHandshakeTimeoutSeconds : DefaultHandshakeTimeoutSeconds;
        var connectTimeout = settings.Int("connect_timeout", 1, 3600) ?? DefaultConnectTimeoutSeconds;
        var mode = ParseMode(settings);
        var serverPort = settings.Int("server_port", 1, 65535);
        var ipv6First = settings.Bool("ipv6_first") ?? false;
        var forbidden = ForbiddenAddresses.Default;
        if (settings.List("forbidden_ip") is { } forbiddenText
            && !ForbiddenAddresses.TryParse(forbiddenText, out forbidden, out var forbiddenError))
        {
            throw new UsageException(Relabel(settings, "forbidden_ip", forbiddenError!));
        }

        IPEndPoint[]? nameservers = null;
        if (settings.List("nameserver") is { Length: > 0 } nameserverText)
        {
            if (!ResolvConf.TryParseServers(nameserverText, out nameservers, out var nameserverError))
            {
                throw new UsageException(Relabel(settings, "nameserver", nameserverError!));
            }
        }
        else if (settings.List("dns") is { Length: > 0 } dnsText && !ResolvConf.TryParseServers(dnsText, out nameservers, out _))
        {
            // shadowsocks-rust's name for nameserver; its resolver names and DNS over TCP, TLS or HTTPS are its own.
            throw new UsageException(
                $"{settings.Label("dns")} '{dnsText}' is not a list of name server addresses (resolver names such as google or cloudflare, and DNS over TCP, TLS or HTTPS, are shadowsocks-rust's); give ADDR[:PORT],... e.g. 8.8.8.8,1.1.1.1, or leave it out for /etc/resolv.conf");
        }

        IPEndPoint listen;
        IPEndPoint[] moreListens = [];
        IPAddress? outboundAddress = null;
        EndPoint? server = null;
        IReadOnlyList<EndPoint> fallbackServers = [];
        ShadowsocksAddress? tunnelDestination = null;
        if (settings.List("server") is { } givenServer && string.IsNullOrWhiteSpace(givenServer))
        {
            throw new UsageException(verb == "server"
                ? $"{settings.Label("server")} '' is not an address; give the address to listen on (0.0.0.0 for every IPv4 address) or leave it out"
                : $"{settings.Label("server")} '' is not an address; give the server's");
        }

        var serverHosts = settings.List("server") is { Length: > 0 } serverText
            ? serverText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(h => (Host: h, Port: (int?)null)).ToList()
            : settings.Servers().ToList();
        var serverLabel = settings.Label(settings.List("server") is { Length: > 0 } ? "server" : "servers"); // where a bad host came from
        if (verb == "server")
        {
            // shadowsocks-rust's server config gives the port in its servers entry, as every later entry does here.
            var port = (serverHosts.Count > 0 ? serverHosts[0].Port : null) ?? serverPort ?? throw new UsageException(MissingServerPort);
            listen = new IPEndPoint(ParseListenAddress(serverHosts.Count > 0 ? serverHosts[0].Host : "0.0.0.0", serverLabel), port);
            moreListens = [.. serverHosts.Skip(1).Select(h => new IPEndPoint(ParseListenAddress(h.Host, serverLabel), h.Port ?? port)).Distinct()];

            // ss-server's -b: where its connections to destinations come from (local and tunnel listen on it).
            outboundAddress = SourceAddress(settings, "local_address");
        }
        else
        {
            // Several servers: repeated -s (one port), or config "servers": [...]; the first is preferred.
            if (serverHosts.Count == 0)
            {
                throw new UsageException("-s: missing server address (or \"server\" / \"servers\" in the config file, or --server-url)");
            }

            var endPoints = serverHosts.Select(h => h.Port is null ? SplitPort(h.Host, serverLabel) : h).Select(h =>
            {
                var port = h.Port ?? serverPort ?? throw new UsageException(MissingServerPort);
                return IPAddress.TryParse(h.Host.Trim('[', ']'), out var ip) ? (EndPoint)new IPEndPoint(ip, port) : new DnsEndPoint(CheckHostName(h.Host, serverLabel), port);
            }).Distinct().ToList(); // a server given twice is tried once: a second try of one that never answers cost a second timeout
            server = endPoints[0];
            fallbackServers = endPoints.Skip(1).ToList();
            var localPort = settings.Int("local_port", 0, 65535)
                ?? throw new UsageException(settings.Configuration.GetSection("locals").Exists()
                    ? "locals: shadowsocks-rust's list of local listeners is not read here; give one listener as \"local_address\" and \"local_port\" (or -b and -l)"
                    : "-l: missing local port (or \"local_port\" in the config file)");
            listen = new IPEndPoint(ParseListenAddress(settings.String("local_address") is { Length: > 0 } la ? la : "127.0.0.1", settings.Label("local_address")), localPort);
            if (verb == "tunnel")
            {
                var target = settings.String("tunnel_address") is { Length: > 0 } t ? t
                    : throw new UsageException("-L: missing tunnel destination; give -L HOST:PORT (or \"tunnel_address\" in the config file)");
                tunnelDestination = ParseHostPort(target, settings.Label("tunnel_address"));
            }
        }

        var acl = ReadAcl(settings, verb);
        var socks5Users = ReadSocks5Users(settings, verb);
        var plugin = LocatePlugin(settings, mode, environment);
        // A local's plugin connects to one server; a server's listens on all its addresses (SIP003: "a|b"), on one port.
        if (plugin is not null && (fallbackServers.Count > 0 || moreListens.Any(l => l.Port != listen.Port)))
        {
            throw new UsageException($"{settings.Label("plugin")} a plugin carries one server, on one port; give one, or no plugin");
        }

        var pipeline = settings.Pipeline(PipelineOptions.Default);
        var relay = new RelayOptions
        {
            Listen = listen,
            MoreListens = moreListens,
            Cipher = cipher,
            MasterKey = key,
            IdentityKeys = identityKeys,
            Users = users,
            Server = server,
            FallbackServers = fallbackServers,
            TunnelDestination = tunnelDestination,
            IdleTimeout = TimeSpan.FromSeconds(timeout),
            UdpTimeout = TimeSpan.FromSeconds(udpTimeout),
            MaxConnections = maxConnections,
            HandshakeTimeout = TimeSpan.FromSeconds(handshakeTimeout),
            ConnectTimeout = TimeSpan.FromSeconds(connectTimeout),
            Forbidden = forbidden,
            UdpMaxAssociations = udpMax,
            Ipv6First = ipv6First,
            FastOpen = settings.Bool("fast_open") ?? false,
            ReusePort = settings.Bool("reuse_port") ?? false,
            // ss-libev's manual lists "::0" with "0.0.0.0": "::" then cannot take IPv4 as well (ss-server binds every host given IPv6-only).
            ListenIpv6Only = (settings.Bool("ipv6_only") ?? false)
                || moreListens.Prepend(listen).Any(static l => l.AddressFamily == AddressFamily.InterNetwork),
            Mptcp = settings.Bool("mptcp") ?? false,
            OutboundInterface = settings.String("interface") is { Length: > 0 } networkInterface ? networkInterface
                : settings.String("outbound_bind_interface") is { Length: > 0 } rustName ? rustName // shadowsocks-rust's name
                : null,
            OutboundAddress = SourceAddress(settings, "outbound_bind_addr") ?? outboundAddress, // shadowsocks-rust's name, every verb
            Acl = acl,
            Socks5Users = socks5Users,
            Pipeline = pipeline,
            ReadBudget = new(pipeline.ReadBudgetMiB * (1L << 20)),
        };
        settings.CheckSection("telemetry", ["traces", "otlp_endpoint", "otlp_protocol", "metrics_listen"]);
        var telemetry = new TelemetrySettings(
            settings.String("telemetry:traces") is { Length: > 0 } traces ? traces : null,
            settings.String("telemetry:otlp_endpoint") is { Length: > 0 } endpoint ? ParseEndpoint(endpoint, settings.Label("telemetry:otlp_endpoint")) : null,
            ParseProtocol(settings),
            settings.String("telemetry:metrics_listen") is { Length: > 0 } metrics ? ParseMetricsListen(metrics, settings.Label("telemetry:metrics_listen")) : null);
        return new HostSettings(relay, mode, settings.Bool("verbose") ?? false, nameservers)
        {
            Warnings = [.. settingsWarnings, .. RelayWarnings(settings, verb, mode, relay, plugin), .. MetricsWarnings(settings, telemetry)],
            Label = settings.Label,
            OutboundInterfaceKey = settings.String("interface") is { Length: > 0 } ? "interface" : "outbound_bind_interface",
            Telemetry = telemetry,
            PidFile = settings.String("pid_file") is { Length: > 0 } pid ? pid : null,
            Nofile = settings.Int("nofile", 256, 16_777_216),
            User = settings.String("user") is { Length: > 0 } user ? user : null,
            Plugin = plugin,
            ManagerAddress = settings.String("manager_address") is { Length: > 0 } manager
                ? verb == "server" ? manager : throw new UsageException($"{settings.Label("manager_address")} only a server reports to ss-manager; remove it")
                : null,
            MaxConnectionsSet = maxConnectionsSet is not null,
            UdpMaxAssociationsSet = udpMaxSet is not null,
            ShutdownGrace = TimeSpan.FromSeconds(settings.Int("shutdown_grace", 0, 3600) ?? DefaultShutdownGraceSeconds),
        };
    }

    /// <summary>
    /// Lines to print at start about settings that work, but likely not as meant: config keys this program does not use
    /// (a typo, or another program's setting), and combinations that defeat themselves.
    /// </summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>
    /// Where a setting came from, as a refusal's opening words (<c>-a:</c>, <c>user: in FILE,</c>,
    /// <c>SHADOWSOCKS_USER:</c>): for what is checked only at start (the user, the interface, the open-file limit).
    /// </summary>
    public Func<string, string> Label { get; init; } = static key => $"{key.Replace(':', '.')}:";

    /// <summary>
    /// The key <see cref="RelayOptions.OutboundInterface"/> was given with: <c>interface</c> (<c>-i</c>), or
    /// shadowsocks-rust's <c>outbound_bind_interface</c>; for <see cref="Label"/> when the interface is refused.
    /// </summary>
    public string OutboundInterfaceKey { get; init; } = "interface";

    /// <summary>Where traces go (see <see cref="TelemetrySettings"/>).</summary>
    public TelemetrySettings Telemetry { get; init; } = new(null, null, null);

    /// <summary>On SIGINT/SIGTERM, how long open connections may go on after the listeners close (<c>shutdown_grace</c>).</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(DefaultShutdownGraceSeconds);

    /// <summary><c>-a USER</c>: the user to go on as once the ports are open.</summary>
    public string? User { get; init; }

    /// <summary>Whether <c>max_connections</c> was given (a default that does not fit the open-file limit is fitted quietly, unless to the minimum).</summary>
    public bool MaxConnectionsSet { get; init; }

    /// <summary>Whether <c>udp_max_associations</c> was given (the default's share of the open-file limit may be cut, see <see cref="Service.OpenFileBudget"/>).</summary>
    public bool UdpMaxAssociationsSet { get; init; }

    /// <summary><c>-n N</c> (<c>nofile</c>): the open-file limit to set; null: the soft limit is raised to the hard one.</summary>
    public int? Nofile { get; init; }

    /// <summary><c>--plugin</c> (<c>plugin</c>, <c>plugin_opts</c>): the SIP003 plugin the TCP side goes through; null: none.</summary>
    public PluginSettings? Plugin { get; init; }

    /// <summary><c>--manager-address</c>: where the server reports its traffic for ss-manager; null: nowhere.</summary>
    public string? ManagerAddress { get; init; }

    /// <summary><c>-f FILE</c>: run in the background with the pid in this file.</summary>
    public string? PidFile { get; init; }

    public static IReadOnlyDictionary<string, string?> ProcessEnvironment()
    {
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            result[(string)entry.Key] = entry.Value as string;
        }

        return result;
    }

    /// <summary>Parses <c>HOST:PORT</c>, <c>[v6]:PORT</c> or <c>v4:PORT</c>.</summary>
    public static ShadowsocksAddress ParseHostPort(string text, string label)
    {
        var colon = text.LastIndexOf(':');
        // Digits only, as --server-url reads its port: no sign, no spaces, whatever the culture.
        if (colon <= 0 || !ushort.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port == 0)
        {
            throw new UsageException($"{label} '{text}' is not HOST:PORT (e.g. 127.0.0.1:53 or [::1]:53 or example.com:80)");
        }

        var host = HostPart.Unbracket(text[..colon]) ?? throw new UsageException($"{label} '{text}': an IPv6 address goes in brackets, [2001:db8::1]:53");

        if (IPAddress.TryParse(host, out var ip))
        {
            return ShadowsocksAddress.FromIp(ip, port);
        }

        return ShadowsocksAddress.FromHost(CheckHostName(host, label), port);
    }

    /// <summary>
    /// A host name as given, or a refusal: 1 to 255 characters of printable ASCII. A server takes a name of printable
    /// ASCII only (ours, as AddressHeader reads it, and ss-server alike) and drains a connection that sends another; a
    /// resolver finds no other (a local's <c>-s "a b"</c> failed on every connection): refused here, at start.
    /// </summary>
    private static string CheckHostName(string host, string label) =>
        host.Length is 0 or > 255 ? throw new UsageException($"{label} host name '{host}' must be 1 to 255 characters")
        : host.AsSpan().ContainsAnyExceptInRange('!', '~')
            ? throw new UsageException($"{label} host name '{host}' may hold only ASCII letters, digits and punctuation, no spaces (an international name goes as punycode, xn--...)")
        : host;

    /// <summary>
    /// A local's server as ss-local's <c>-s</c> reads it: <c>HOST:PORT</c> or <c>[v6]:PORT</c> carries its own port;
    /// a bare host, or an IPv6 address without brackets (more than one colon), takes <c>-p</c>'s.
    /// </summary>
    private static (string Host, int? Port) SplitPort(string text, string label)
    {
        var colon = text.LastIndexOf(':');
        var bracketed = text.StartsWith('[') && colon > 0 && text[colon - 1] == ']';
        if (colon < 0 || (!bracketed && text.IndexOf(':') != colon))
        {
            return (text, null);
        }

        var address = ParseHostPort(text, label);
        return (address.Host ?? address.Ip!.ToString(), address.Port);
    }

    /// <summary>The warnings read from the settings alone, before any is checked: said with a refusal too.</summary>
    private static IEnumerable<string> SettingsWarnings(LayeredSettings settings, string verb)
    {
        foreach (var unknown in UnknownKeys(settings, verb))
        {
            yield return unknown;
        }

        // ss-server and ss-local refuse -L; a config file shared with a tunnel may well carry tunnel_address.
        if (verb != "tunnel" && settings.Layer("tunnel_address") == settings.CommandLineLayer)
        {
            yield return $"{settings.Label("tunnel_address")} only a tunnel has a fixed destination (ignored); for a port forward run shadowsocks tunnel";
        }

        // Only the local's SOCKS5 handshake is timed by it. The server waits for a header as long as for a probe's next
        // bytes, the idle timeout (PROTOCOL.md, probe resistance); a tunnel's clients have no handshake. A config file
        // shared with a local may well carry it.
        if (verb != "local" && settings.Layer("handshake_timeout") == settings.CommandLineLayer)
        {
            yield return verb == "server"
                ? $"{settings.Label("handshake_timeout")} only a local has a SOCKS5 handshake to time (ignored); a server waits for a client's header as long as for any of its bytes, the idle timeout (-t)"
                : $"{settings.Label("handshake_timeout")} only a local has a SOCKS5 handshake to time (ignored); a tunnel's clients send no handshake";
        }
    }

    /// <summary>The warnings about the settings as checked: combinations that defeat themselves.</summary>
    private static IEnumerable<string> RelayWarnings(LayeredSettings settings, string verb, RelayMode mode, RelayOptions relay, PluginSettings? plugin)
    {
        // SIP003 plugins carry TCP only; with -U nothing is relayed over TCP (a local's SOCKS5 port takes only UDP
        // ASSOCIATE then), so the plugin is not started.
        if (plugin is not null && mode == RelayMode.UdpOnly)
        {
            yield return $"{settings.Label("plugin")} not started: UDP does not go through plugins, and the mode is udp_only (-U) (ignored); relay TCP too (-u) or remove the plugin";
        }

        if (verb != "server")
        {
            yield break;
        }

        if (plugin is not null && relay.Acl is { RestrictsClients: true })
        {
            yield return $"{settings.Label("acl")} behind the plugin every TCP client connects from loopback, so the ACL's client lists apply to UDP only";
        }

        // A client's config reused for a server that others reach: it would reach nothing but this machine.
        if (relay.OutboundAddress is { } from && IPAddress.IsLoopback(from) && !IPAddress.IsLoopback(relay.Listen.Address)
            && settings.String("local_address") is { Length: > 0 })
        {
            yield return $"{settings.Label("local_address")} {from} is a loopback address: the server sends from it (as ss-server does with -b), so it reaches only this machine; local_address is the local's setting, remove it from the server's";
        }
    }

    /// <summary>
    /// Other programs' keys that do nothing here, with what to know about each; keys nobody uses, quietly; and any other
    /// key of the config file, as a possible typo. ss-libev ignores them all silently.
    /// </summary>
    private static IEnumerable<string> UnknownKeys(LayeredSettings settings, string verb)
    {
        var known = new HashSet<string>(
            Flags.Relay.Where(static f => f.Key is not null).Select(static f => f.Key!.Split(':')[0])
                .Concat(["servers", "pipeline", "telemetry", "outbound_bind_addr", "outbound_bind_interface", "users", "ipv6_only", "dns"]),
            StringComparer.OrdinalIgnoreCase);
        foreach (var key in settings.FileKeys())
        {
            if (known.Contains(key) || key is "use_syslog" or "workdir" or "remarks" or "disable_sni")
            {
                continue;
            }

            yield return key switch
            {
                "port_password" => $"{settings.Label(key)} several ports with their own passwords are ss-manager's; this server serves server_port with password (ignored)",
                "dscp" => $"{settings.Label(key)} DSCP marking is not supported (ignored)",
                "locals" => $"{settings.Label(key)} shadowsocks-rust's list of local listeners is not read (ignored); this program listens on local_address and local_port",
                "plugin_args" => $"{settings.Label(key)} not passed to the plugin (ignored); give the plugin what it needs in plugin_opts",
                _ when s_nestedOnly.TryGetValue(key, out var parent) =>
                    $"{settings.Label(key)} not a top-level setting (ignored); did you mean \"{parent}.{key.ToLowerInvariant()}\", i.e. \"{parent}\": {{ \"{key.ToLowerInvariant()}\": ... }}?",
                _ => ClosestKey(key, known) is { } meant
                    ? $"{settings.Label(key)} not a setting this program knows (ignored); did you mean \"{meant}\"?"
                    : $"{settings.Label(key)} not a setting this program knows (ignored); see shadowsocks {verb} --help",
            };
        }

        // shadowsocks-rust's servers entries may carry settings of their own (plugin, mode, timeout, ...); here an entry
        // gives its address and port, and the one method and password (and a server's users).
        foreach (var entry in settings.Configuration.GetSection("servers").GetChildren())
        {
            foreach (var field in entry.GetChildren())
            {
                if (field.Key.ToLowerInvariant() is not ("server" or "address" or "server_port" or "port" or "method" or "password" or "key"
                    or "users" or "disabled" or "remarks" or "name" or "id"))
                {
                    yield return $"{settings.Label(field.Path)} a server entry's own {field.Key} is not read (ignored); give \"{field.Key}\" at the top level, for every server";
                }
            }
        }
    }

    /// <summary>
    /// The known key a misspelt one was likely meant as (<c>sever_port</c>: <c>server_port</c>): one or two edits away,
    /// one only for a short key (two would make <c>tls</c> an <c>acl</c>); null when none is that close.
    /// </summary>
    private static string? ClosestKey(string key, IEnumerable<string> known)
    {
        var most = key.Length < 6 ? 1 : 2;
        return known
            .Select(k => (Key: k, Distance: EditDistance.Between(key.ToLowerInvariant(), k)))
            .Where(t => t.Distance <= most)
            .OrderBy(t => t.Distance)
            .ThenBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => t.Key)
            .FirstOrDefault();
    }

    /// <summary>
    /// A source address for outbound connections (<paramref name="key"/>: the server's <c>local_address</c>, ss-server's
    /// <c>-b</c>; <c>outbound_bind_addr</c>, shadowsocks-rust's, on every verb), checked to be one of this machine's.
    /// </summary>
    private static IPAddress? SourceAddress(LayeredSettings settings, string key)
    {
        if (settings.String(key) is not { Length: > 0 } text)
        {
            return null;
        }

        if (!IPAddress.TryParse(text.Trim('[', ']'), out var address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            throw new UsageException($"{settings.Label(key)} '{text}' is not an IP address of this machine to send from (the source address of outbound connections)");
        }

        try
        {
            using var probe = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            probe.Bind(new IPEndPoint(address, 0));
        }
        catch (SocketException)
        {
            throw new UsageException($"{settings.Label(key)} {address} is not an address of this machine (the source address of outbound connections)");
        }

        return address;
    }

    /// <summary>The ACL file (<c>--acl</c>, server and local), read and checked now: a bad rule stops the start with its line.</summary>
    private static AccessControlList? ReadAcl(LayeredSettings settings, string verb)
    {
        if (settings.String("acl") is not { Length: > 0 } path)
        {
            return null;
        }

        if (verb == "tunnel")
        {
            throw new UsageException($"{settings.Label("acl")} a tunnel has one fixed destination, so an ACL has nothing to decide; remove it");
        }

        var text = ReadNamedFile(settings, "acl", path, "an ACL file (ss-libev's format)", "the ACL file");
        return AccessControlList.TryParse(text, out var acl, out var error) ? acl : throw new UsageException($"{settings.Label("acl")} {path} {error}");
    }

    /// <summary>
    /// The text of the file a setting names (<paramref name="key"/>: <c>acl</c>, <c>socks5_auth</c>). One that cannot be
    /// read stops the start as <c>-c</c> says it (not .NET's "Could not find file '...'."), naming what to give:
    /// <paramref name="aFile"/> for a missing path, <paramref name="theFile"/> in a directory given instead.
    /// </summary>
    private static string ReadNamedFile(LayeredSettings settings, string key, string path, string aFile, string theFile, string readableBy = "")
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var why = e switch
            {
                FileNotFoundException or DirectoryNotFoundException => $"no such file; give the path of {aFile}",
                UnauthorizedAccessException when Directory.Exists(path) => $"is a directory; give {theFile} in it",
                UnauthorizedAccessException => $"permission denied; make it readable by the user the program starts as{readableBy}",
                _ => e.Message,
            };
            throw new UsageException($"{settings.Label(key)} cannot read {path}: {why}");
        }
    }

    /// <summary>
    /// The local's SOCKS5 users (<c>--socks5-auth FILE</c>, config <c>socks5_auth</c>), read and checked now: a bad
    /// line stops the start naming it.
    /// </summary>
    private static Socks5Users? ReadSocks5Users(LayeredSettings settings, string verb)
    {
        if (settings.String("socks5_auth") is not { Length: > 0 } path)
        {
            return null;
        }

        if (verb != "local")
        {
            throw new UsageException($"{settings.Label("socks5_auth")} only a local has a SOCKS5 port to log in to; remove it");
        }

        var text = ReadNamedFile(settings, "socks5_auth", path, "a file of user:password lines", "the file of user:password lines",
            " (and by no one else: it holds passwords)");
        return Socks5Users.TryParse(text, out var users, out var error) ? users : throw new UsageException($"{settings.Label("socks5_auth")} {path} {error}");
    }

    /// <summary>The plugin, found on PATH (or at the path given) now, so that a typo stops the start with one line.</summary>
    private static PluginSettings? LocatePlugin(LayeredSettings settings, RelayMode mode, IReadOnlyDictionary<string, string?> environment)
    {
        if (settings.String("plugin") is not { Length: > 0 } program)
        {
            return settings.String("plugin_opts") is { Length: > 0 }
                ? throw new UsageException($"{settings.Label("plugin_opts")} plugin options without a plugin; give --plugin PROGRAM too")
                : null;
        }

        // With -U the plugin is never started (RelayWarnings says so): one that is not installed is no reason to refuse.
        var executable = PluginSettings.Locate(program, environment.GetValueOrDefault("PATH"))
            ?? (mode == RelayMode.UdpOnly ? program : throw new UsageException($"{settings.Label("plugin")} '{program}' {PluginNotFound(program)}"));
        return new PluginSettings(program, executable, settings.String("plugin_opts") is { Length: > 0 } options ? options : null);
    }

    /// <summary>Why a plugin was not found: a path names its own fault; a bare name was looked for on PATH.</summary>
    private static string PluginNotFound(string program) =>
        !program.Contains('/', StringComparison.Ordinal) ? "is not an executable on PATH; install it (e.g. apt-get install simple-obfs) or give its full path"
        : Directory.Exists(program) ? "is a directory; give the plugin program's path (e.g. /usr/bin/obfs-server)"
        : File.Exists(program) ? "is not executable; make it so (chmod +x) or give the plugin program's path"
        : "no such file; give the plugin program's path, or its name to look for on PATH";

    private static IPAddress ParseListenAddress(string text, string label)
    {
        if (text is "localhost")
        {
            return IPAddress.Loopback;
        }

        if (text is "::" or "[::]")
        {
            return IPAddress.IPv6Any;
        }

        return IPAddress.TryParse(text.Trim('[', ']'), out var ip)
            ? ip
            : throw new UsageException($"{label} '{text}' is not an IP address to listen on (e.g. 127.0.0.1, 0.0.0.0 or ::)");
    }

    /// <summary>
    /// Where the method, password or key is read: the top-level setting, or else the first entry of a
    /// shadowsocks-rust <c>"servers": [{ ..., "method", "password" }]</c> list.
    /// </summary>
    private static string SharedKey(LayeredSettings settings, string name) =>
        settings.String(name) is not { Length: > 0 } && settings.String($"servers:0:{name}") is { Length: > 0 } ? $"servers:0:{name}" : name;

    /// <summary>
    /// Every server of a <c>servers</c> list shares the one method and key in use (as ss-libev's list of servers does):
    /// an entry with another is refused here rather than failing at its first connection. Passwords are never echoed.
    /// </summary>
    private static void CheckOneSecret(LayeredSettings settings, CipherInfo cipher, byte[] key, byte[][] identityKeys)
    {
        bool Same(byte[] own, byte[][] ownIdentities) =>
            own.AsSpan().SequenceEqual(key) && ownIdentities.Length == identityKeys.Length
            && ownIdentities.Zip(identityKeys).All(static p => p.First.AsSpan().SequenceEqual(p.Second));

        for (var i = 0; settings.Configuration.GetSection($"servers:{i}").Exists(); i++)
        {
            if (settings.Bool($"servers:{i}:disabled") == true)
            {
                continue; // not used (LayeredSettings.Servers)
            }

            string? differs = null;
            if (settings.String($"servers:{i}:method") is { Length: > 0 } method
                && !(CipherCatalog.TryGet(method, out var named, out _) && named.Name == cipher.Name)) // names match as the catalog reads them
            {
                differs = "method";
            }
            else if (settings.String($"servers:{i}:key") is { Length: > 0 } base64
                && !(KeyDerivation.TryClientKeysFromPassword(cipher, base64, out var own, out var ownIdentities, out _, field: "key") && Same(own, ownIdentities)))
            {
                differs = "key";
            }
            else if (settings.String($"servers:{i}:password") is { Length: > 0 } password
                && !(KeyDerivation.TryClientKeysFromPassword(cipher, password, out var theirs, out var theirIdentities, out _) && Same(theirs, theirIdentities)))
            {
                differs = "password";
            }

            if (differs is not null)
            {
                throw new UsageException(
                    $"{settings.Label($"servers:{i}:{differs}")} differs from the {differs} in use; every server here shares one method and password (run one process per password)");
            }
        }
    }

    /// <summary>
    /// The master key, and a local's or tunnel's identity keys: a 2022 AES method's password (or key) may be a chain
    /// <c>iPSK:...:uPSK</c> for a multi-user server (SIP023); a server's is its own key, its users' keys in <c>users</c>.
    /// </summary>
    private static (byte[] Key, byte[][] IdentityKeys) Keys(LayeredSettings settings, CipherInfo cipher, string verb)
    {
        // Key and password are one setting given two ways: the layer that gives either wins (-k beats the file's key);
        // within one layer the key wins, as with ss-libev.
        var keyKey = SharedKey(settings, "key");
        var field = "key";
        if (settings.String(keyKey) is not { Length: > 0 } secret || settings.Layer(keyKey) < settings.Layer(SharedKey(settings, "password")))
        {
            keyKey = SharedKey(settings, "password");
            field = "password";
            secret = settings.String(keyKey);
            if (string.IsNullOrEmpty(secret))
            {
                throw new UsageException($"-k: missing password; give -k PASSWORD, --key BASE64, \"password\" in the config file, or set {PasswordVariable}");
            }
        }

        if (verb == "server" && cipher.Is2022 && secret.Contains(':', StringComparison.Ordinal))
        {
            throw new UsageException(
                $"{settings.Label(keyKey)} a server's {field} is its own key (iPSK:uPSK is a client's); give its users' keys in \"users\": [{{\"name\": ..., \"password\": ...}}]");
        }

        return KeyDerivation.TryClientKeysFromPassword(cipher, secret, out var key, out var identityKeys, out var error, field)
            ? (key, identityKeys)
            : throw new UsageException(Relabel(settings, keyKey, error!));
    }

    /// <summary>
    /// A multi-user 2022 server's <c>users</c> (SIP023, shadowsocks-rust's form): <c>[{"name": NAME, "password": KEY}]</c>
    /// at the top level or in the first <c>servers</c> entry, each key base64 of the method's key size, none twice.
    /// </summary>
    private static UserKey[] Users(LayeredSettings settings, CipherInfo cipher, string verb)
    {
        var configuration = settings.Configuration;
        if (configuration.GetSection("servers").GetChildren().Skip(1).FirstOrDefault(s => s.GetSection("users").Exists()) is { } later)
        {
            throw new UsageException($"{settings.Label($"{later.Path}:users")} a server has one users list: give it at the top level (or in the first servers entry)");
        }

        if (configuration.GetSection("users").Exists() && configuration.GetSection("servers:0:users").Exists())
        {
            throw new UsageException($"{settings.Label("servers:0:users")} users are given at the top level too; keep one list");
        }

        var path = configuration.GetSection("users").Exists() ? "users" : "servers:0:users";
        var section = configuration.GetSection(path);
        if (!section.Exists())
        {
            return [];
        }

        const string Form = "[{\"name\": NAME, \"password\": BASE64 KEY}, ...]";
        if (verb != "server")
        {
            throw new UsageException($"{settings.Label(path)} only a server has users; a local or tunnel gives its user's key after the server's, as password \"iPSK:uPSK\"");
        }

        if (!cipher.HasIdentityHeaders)
        {
            throw new UsageException(
                $"{settings.Label(path)} several users on one port need identity headers (SIP023), which only 2022-blake3-aes-128-gcm and 2022-blake3-aes-256-gcm have, not {cipher.Name}");
        }

        var items = section.GetChildren().ToList();
        if (items.Count == 0 && string.IsNullOrWhiteSpace(section.Value)) // "users": [] (the configuration reads it as an empty value)
        {
            throw new UsageException($"{settings.Label(path)} the list is empty; give at least one user, as {Form} (a server with one key has no users list)");
        }

        if (section.Value is not null || items.Count == 0 || items.Any(static i => i.Value is not null))
        {
            throw new UsageException($"{settings.Label(path)} expected {Form}");
        }

        var users = new List<UserKey>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var keys = new Dictionary<string, string>(StringComparer.Ordinal); // a key (base64, as decoded) -> its user's name
        foreach (var item in items)
        {
            var nameKey = $"{item.Path}:name";
            var passwordKey = $"{item.Path}:password";
            var name = settings.String(nameKey)?.Trim() is { Length: > 0 } given ? given
                : throw new UsageException($"{settings.Label(item.Path)} missing \"name\"; every user has a name (it goes on the user's connections in logs and traces)");
            var password = settings.String(passwordKey) is { Length: > 0 } text ? text
                : throw new UsageException($"{settings.Label(item.Path)} missing \"password\"; give the user's key (make one with: shadowsocks genkey -m {cipher.Name})");
            if (!KeyDerivation.TryParseBase64Key(cipher, password, out var key, out var error, field: "password"))
            {
                throw new UsageException(Relabel(settings, passwordKey, error!));
            }

            if (!names.Add(name))
            {
                throw new UsageException($"{settings.Label(nameKey)} '{name}' is the name of another user too; give each user a name of their own");
            }

            var encoded = Convert.ToBase64String(key);
            if (!keys.TryAdd(encoded, name))
            {
                throw new UsageException(
                    $"{settings.Label(passwordKey)} is user '{keys[encoded]}''s key too; give each user a key of their own (the key says who is who)");
            }

            users.Add(new UserKey(name, key));
        }

        return [.. users];
    }

    /// <summary>A Core parser's "field: problem" message, opened instead with where the value came from.</summary>
    private static string Relabel(LayeredSettings settings, string key, string error)
    {
        var field = key[(key.LastIndexOf(':') + 1)..]; // servers:0:method: the parser says "method:"
        return error.StartsWith($"{field}: ", StringComparison.Ordinal) ? $"{settings.Label(key)} {error[(field.Length + 2)..]}" : $"{settings.Label(key)} {error}";
    }

    private static Uri ParseEndpoint(string text, string label) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new UsageException($"{label} '{text}' is not an http:// or https:// URL (e.g. http://localhost:4317)");

    /// <summary>A metrics port others can reach: it answers anyone who asks (no authentication), so it is said at start.</summary>
    private static IEnumerable<string> MetricsWarnings(LayeredSettings settings, TelemetrySettings telemetry)
    {
        if (telemetry.MetricsListen is { } metrics && !IPAddress.IsLoopback(metrics.Address))
        {
            yield return $"{settings.Label("telemetry:metrics_listen")} {metrics} is not loopback: /metrics has no authentication, so anyone who reaches the port reads the traffic figures; firewall it, or listen on 127.0.0.1";
        }
    }

    /// <summary><c>ADDR:PORT</c> to serve <c>/metrics</c> on: an IP address (or <c>localhost</c>), IPv6 in brackets, a port from 1.</summary>
    private static IPEndPoint ParseMetricsListen(string text, string label)
    {
        var colon = text.LastIndexOf(':');
        var host = colon > 0 ? HostPart.Unbracket(text[..colon]) : null;
        IPAddress? address = host is "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var ip) && (host!.Contains('.') || text.StartsWith('[')) ? ip : null;
        return address is not null && ushort.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port > 0
            ? new IPEndPoint(address, port)
            : throw new UsageException($"{label} '{text}' is not ADDR:PORT to serve Prometheus metrics on; give e.g. 127.0.0.1:9464 or [::1]:9464");
    }

    private static OpenTelemetry.Exporter.OtlpExportProtocol? ParseProtocol(LayeredSettings settings) => settings.String("telemetry:otlp_protocol") switch
    {
        null or "" => null,
        "grpc" => OpenTelemetry.Exporter.OtlpExportProtocol.Grpc,
        "http/protobuf" => OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf,
        var other => throw new UsageException($"{settings.Label("telemetry:otlp_protocol")} '{other}' is not grpc or http/protobuf"),
    };

    private static RelayMode ParseMode(LayeredSettings settings) => settings.String("mode") switch
    {
        null or "" or "tcp_only" => RelayMode.TcpOnly,
        "tcp_and_udp" => RelayMode.TcpAndUdp,
        "udp_only" => RelayMode.UdpOnly,
        var other => throw new UsageException($"{settings.Label("mode")} '{other}' is not tcp_only, tcp_and_udp or udp_only"),
    };
}
