using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Hosts.Configuration;

/// <summary>
/// The validated settings of one relay verb, from the command line over config.json (a flag given on the command
/// line wins). Every error is a <see cref="UsageException"/> with one line naming the flag or field and the fix.
/// </summary>
internal sealed record HostSettings(RelayOptions Relay, RelayMode Mode, bool Verbose, IPEndPoint[]? Nameservers = null)
{
    /// <summary>ss-libev's default method.</summary>
    public const string DefaultMethod = "chacha20-ietf-poly1305";

    /// <summary>ss-libev's default idle timeout, seconds.</summary>
    public const int DefaultTimeoutSeconds = 60;

    /// <summary>TCP connections open at once before new ones wait (<c>--max-connections</c>, config <c>max_connections</c>).</summary>
    public const int DefaultMaxConnections = 10_000;

    /// <summary>Seconds a SOCKS5 client may take for its greeting and request (<c>--handshake-timeout</c>, config <c>handshake_timeout</c>).</summary>
    public const int DefaultHandshakeTimeoutSeconds = 10;

    /// <summary>How long a UDP association lives after its last datagram, seconds (config <c>udp_timeout</c>).</summary>
    public const int DefaultUdpTimeoutSeconds = 300;

    /// <summary>The most UDP associations at once (config <c>udp_max_associations</c>); the least recently used gives way.</summary>
    public const int DefaultUdpMaxAssociations = 4096;

    /// <summary>The environment variable read for the password when neither -k nor --key nor the file gives one.</summary>
    public const string PasswordVariable = "SHADOWSOCKS_PASSWORD";

    public static HostSettings Build(string verb, ParsedArguments args)
    {
        var file = args.Value("-c") is { } path ? ConfigFile.Load(path) : null;

        var methodName = args.Value("-m") ?? file?.String("method") ?? DefaultMethod;
        if (!CipherCatalog.TryGet(methodName, out var cipher, out var methodError))
        {
            throw new UsageException(methodError!);
        }

        var key = MasterKey(args, file, cipher);
        var timeout = args.IntValue("-t", 1, 86_400) ?? file?.Int("timeout", 1, 86_400) ?? DefaultTimeoutSeconds;
        var udpTimeout = file?.Int("udp_timeout", 1, 86_400) ?? DefaultUdpTimeoutSeconds;
        var udpMax = file?.Int("udp_max_associations", 1, 1_000_000) ?? DefaultUdpMaxAssociations;
        var maxConnections = args.IntValue("--max-connections", 1, 10_000_000) ?? file?.Int("max_connections", 1, 10_000_000) ?? DefaultMaxConnections;
        var handshakeTimeout = args.IntValue("--handshake-timeout", 1, 3600) ?? file?.Int("handshake_timeout", 1, 3600) ?? DefaultHandshakeTimeoutSeconds;
        var mode = ParseMode(args, file);
        var serverHost = args.Value("-s") ?? file?.String("server");
        var serverPort = args.IntValue("-p", 1, 65535) ?? file?.Int("server_port", 1, 65535);
        var ipv6First = args.Has("-6") || (file?.Bool("ipv6_first") ?? false);
        var forbidden = ForbiddenAddresses.Default;
        if ((args.Value("--forbidden-ip") ?? file?.List("forbidden_ip")) is { } forbiddenText
            && !ForbiddenAddresses.TryParse(forbiddenText, out forbidden, out var forbiddenError))
        {
            throw new UsageException(forbiddenError!);
        }

        IPEndPoint[]? nameservers = null;
        if ((args.Value("-d") ?? args.Value("--nameserver") ?? file?.String("nameserver")) is { } nameserverText)
        {
            if (!ResolvConf.TryParseServers(nameserverText, out nameservers, out var nameserverError))
            {
                throw new UsageException(nameserverError!);
            }
        }

        IPEndPoint listen;
        EndPoint? server = null;
        IReadOnlyList<EndPoint> fallbackServers = [];
        ShadowsocksAddress? tunnelDestination = null;
        if (verb == "server")
        {
            var port = serverPort ?? throw new UsageException("-p: missing server port (or \"server_port\" in the config file)");
            listen = new IPEndPoint(ParseListenAddress(serverHost ?? "0.0.0.0", "-s"), port);
        }
        else
        {
            // Several servers: repeated -s (one port), or config "servers": [...]; the first is preferred.
            var fileServers = file?.Servers() ?? [];
            var hosts = args.Values("-s").Count > 0 ? args.Values("-s").Select(h => (Host: h, Port: (int?)null)).ToList()
                : file?.String("server") is { } fileHost ? [(fileHost, (int?)null)]
                : fileServers.ToList();
            if (hosts.Count == 0)
            {
                throw new UsageException("-s: missing server address (or \"server\" / \"servers\" in the config file)");
            }

            var endPoints = hosts.Select(h =>
            {
                var port = h.Port ?? serverPort ?? throw new UsageException("-p: missing server port (or \"server_port\" in the config file)");
                return IPAddress.TryParse(h.Host.Trim('[', ']'), out var ip) ? (EndPoint)new IPEndPoint(ip, port) : new DnsEndPoint(h.Host, port);
            }).ToList();
            server = endPoints[0];
            fallbackServers = endPoints.Skip(1).ToList();
            var localPort = args.IntValue("-l", 0, 65535) ?? file?.Int("local_port", 0, 65535)
                ?? throw new UsageException("-l: missing local port (or \"local_port\" in the config file)");
            listen = new IPEndPoint(ParseListenAddress(args.Value("-b") ?? file?.String("local_address") ?? "127.0.0.1", "-b"), localPort);
            if (verb == "tunnel")
            {
                var target = args.Value("-L") ?? file?.String("tunnel_address")
                    ?? throw new UsageException("-L: missing tunnel destination; give -L HOST:PORT");
                tunnelDestination = ParseHostPort(target, "-L");
            }
        }

        var relay = new RelayOptions
        {
            Listen = listen,
            Cipher = cipher,
            MasterKey = key,
            Server = server,
            FallbackServers = fallbackServers,
            TunnelDestination = tunnelDestination,
            IdleTimeout = TimeSpan.FromSeconds(timeout),
            UdpTimeout = TimeSpan.FromSeconds(udpTimeout),
            MaxConnections = maxConnections,
            HandshakeTimeout = TimeSpan.FromSeconds(handshakeTimeout),
            Forbidden = forbidden,
            UdpMaxAssociations = udpMax,
            Ipv6First = ipv6First,
            Pipeline = file?.Pipeline(PipelineOptions.Default) ?? PipelineOptions.Default,
        };
        return new HostSettings(relay, mode, args.Has("-v"), nameservers);
    }

    /// <summary>Parses <c>HOST:PORT</c>, <c>[v6]:PORT</c> or <c>v4:PORT</c>.</summary>
    public static ShadowsocksAddress ParseHostPort(string text, string flag)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(text[(colon + 1)..], out var port) || port == 0)
        {
            throw new UsageException($"{flag}: '{text}' is not HOST:PORT (e.g. 127.0.0.1:53 or [::1]:53 or example.com:80)");
        }

        var host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        return IPAddress.TryParse(host, out var ip)
            ? ShadowsocksAddress.FromIp(ip, port)
            : host.Length is > 0 and <= 255
                ? ShadowsocksAddress.FromHost(host, port)
                : throw new UsageException($"{flag}: host name '{host}' must be 1 to 255 characters");
    }

    private static IPAddress ParseListenAddress(string text, string flag)
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
            : throw new UsageException($"{flag}: '{text}' is not an IP address to listen on (e.g. 127.0.0.1, 0.0.0.0 or ::)");
    }

    private static byte[] MasterKey(ParsedArguments args, ConfigFile? file, CipherInfo cipher)
    {
        if ((args.Value("--key") ?? file?.String("key")) is { } base64)
        {
            return KeyDerivation.TryParseBase64Key(cipher, base64, out var key, out var error) ? key : throw new UsageException(error!);
        }

        var password = args.Value("-k")
            ?? (args.Value("--password-env") is { } variable
                ? Environment.GetEnvironmentVariable(variable) ?? throw new UsageException($"--password-env: environment variable {variable} is not set")
                : null)
            ?? file?.String("password")
            ?? Environment.GetEnvironmentVariable(PasswordVariable);
        if (string.IsNullOrEmpty(password))
        {
            throw new UsageException($"-k: missing password; give -k PASSWORD, --key BASE64, \"password\" in the config file, or set {PasswordVariable}");
        }

        return KeyDerivation.MasterKeyFromPassword(cipher, password);
    }

    private static RelayMode ParseMode(ParsedArguments args, ConfigFile? file)
    {
        if (args.Has("-U"))
        {
            return RelayMode.UdpOnly;
        }

        if (args.Has("-u"))
        {
            return RelayMode.TcpAndUdp;
        }

        return file?.String("mode") switch
        {
            null or "tcp_only" => RelayMode.TcpOnly,
            "tcp_and_udp" => RelayMode.TcpAndUdp,
            "udp_only" => RelayMode.UdpOnly,
            var other => throw new UsageException($"mode: '{other}' is not tcp_only, tcp_and_udp or udp_only"),
        };
    }
}
