using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Hosts.Telemetry;
using Shadowsocks.Pipeline.Stages.Relay;

namespace Shadowsocks.Pipeline.Hosts.Verbs;

/// <summary><c>shadowsocks local|server|tunnel</c>: start the relay, print one line when listening, run until SIGINT/SIGTERM.</summary>
internal static class RelayVerb
{
    public static async Task<int> RunAsync(string verb, ParsedArguments args, TextWriter output, TextWriter error, CancellationToken stop)
    {
        var settings = HostSettings.Build(verb, args);
        var relay = settings.Relay;
        using var telemetry = TelemetrySetup.Start(verb, settings.Telemetry);
        var running = new List<IAsyncDisposable>();
        System.Net.IPEndPoint bound;
        var tcp = settings.Mode != RelayMode.UdpOnly || verb == "local"; // SOCKS5 UDP ASSOCIATE needs the TCP side
        var udp = settings.Mode != RelayMode.TcpOnly;
        try
        {
            bound = await StartAsync(verb, relay, settings.Nameservers, tcp, udp, running).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            await StopAsync(running).ConfigureAwait(false);
            error.WriteLine($"shadowsocks: cannot listen on {relay.Listen}: {Describe(e)}");
            return ExitCodes.RuntimeFailure;
        }

        var what = verb switch
        {
            "server" => "shadowsocks server",
            "local" => $"shadowsocks local (SOCKS5) via {relay.Server}",
            _ => $"shadowsocks tunnel to {relay.TunnelDestination} via {relay.Server}",
        };
        var protocols = (tcp, udp) switch { (true, true) => "tcp and udp", (true, false) => "tcp", _ => "udp" };
        output.WriteLine($"{what} listening on {bound} {protocols}, method {relay.Cipher.Name}");
        if (telemetry.TraceFile is { } traceFile)
        {
            output.WriteLine($"traces: {traceFile} (Jaeger UI: Search -> Upload)");
        }

        output.Flush();
        if (settings.Verbose)
        {
            var p = relay.Pipeline;
            error.WriteLine($"pipeline: handshake {p.Handshake}, resolve {p.Resolve}, connect {p.Connect}, encrypt {p.Encrypt}, decrypt {p.Decrypt}, forward {p.Forward}, udp {p.Udp}");
        }

        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // SIGINT or SIGTERM: stop accepting and close.
        }

        await StopAsync(running).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>Starts the verb's TCP and/or UDP relays on one address and port (as ss-libev does); returns that endpoint.</summary>
    private static async Task<IPEndPoint> StartAsync(string verb, RelayOptions relay, IPEndPoint[]? nameservers, bool tcp, bool udp, List<IAsyncDisposable> running)
    {
        var scheduler = TaskPoolScheduler.Default;
        var listen = relay.Listen;
        if (verb == "server")
        {
            // The program's own resolver: -d / "nameserver", else resolv.conf; shared by the TCP and UDP relays.
            var resolver = new DnsResolver(new DnsResolverOptions { Servers = nameservers, Ipv6First = relay.Ipv6First }, scheduler, TimeProvider.System);
            running.Add(new DisposeAsync(resolver));
            if (tcp)
            {
                var server = new ServerTcpRelay(relay, resolver, scheduler, TimeProvider.System);
                running.Add(server);
                server.Start();
                listen = server.LocalEndPoint;
            }

            if (udp)
            {
                var serverUdp = new ServerUdpRelay(relay, resolver, scheduler);
                running.Add(serverUdp);
                serverUdp.Start(listen);
                listen = serverUdp.LocalEndPoint;
            }

            return listen;
        }

        var serverEndPoint = udp ? await ResolveServerAsync(relay.Server!).ConfigureAwait(false) : null;
        if (verb == "local")
        {
            LocalUdpRelay? localUdp = null;
            if (udp)
            {
                // UDP first on the requested port; with port 0 the TCP listener then takes the same number.
                localUdp = new LocalUdpRelay(relay, serverEndPoint!, scheduler);
                running.Add(localUdp);
                localUdp.Start(listen);
                listen = localUdp.LocalEndPoint;
            }

            var local = new LocalTcpRelay(relay with { Listen = listen }, scheduler, TimeProvider.System, localUdp);
            running.Add(local);
            local.Start();
            return local.LocalEndPoint;
        }

        if (tcp)
        {
            var tunnel = new TunnelRelay(relay, scheduler, TimeProvider.System);
            running.Add(tunnel);
            tunnel.Start();
            listen = tunnel.LocalEndPoint;
        }

        if (udp)
        {
            var tunnelUdp = new TunnelUdpRelay(relay, serverEndPoint!, scheduler);
            running.Add(tunnelUdp);
            tunnelUdp.Start(listen);
            listen = tunnelUdp.LocalEndPoint;
        }

        return listen;
    }

    /// <summary>UDP sockets need the server's address up front; a name is resolved once at start.</summary>
    private static async Task<IPEndPoint> ResolveServerAsync(System.Net.EndPoint server)
    {
        if (server is IPEndPoint ip)
        {
            return ip;
        }

        var dns = (System.Net.DnsEndPoint)server;
        var addresses = await System.Net.Dns.GetHostAddressesAsync(dns.Host).ConfigureAwait(false);
        return addresses.Length > 0
            ? new IPEndPoint(addresses[0], dns.Port)
            : throw new SocketException((int)SocketError.HostNotFound);
    }

    private static async Task StopAsync(List<IAsyncDisposable> running)
    {
        for (var i = running.Count - 1; i >= 0; i--)
        {
            var relay = running[i];
            await relay.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => "address already in use (is another proxy running on that port?)",
        SocketError.AddressNotAvailable => "address not available on this machine",
        SocketError.AccessDenied => "permission denied (ports below 1024 need privileges)",
        _ => e.Message,
    };
}
