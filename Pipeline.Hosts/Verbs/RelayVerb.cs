using System.Net.Sockets;
using System.Reactive.Concurrency;
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
        if (settings.Mode == RelayMode.UdpOnly)
        {
            throw new UsageException("-U: the UDP relay is not available yet in this build; run without -U/mode udp_only");
        }

        if (settings.Mode == RelayMode.TcpAndUdp)
        {
            error.WriteLine("shadowsocks: warning: UDP relay not available yet in this build; relaying TCP only");
        }

        using var telemetry = TelemetrySetup.Start(verb, args.Value("--traces"));
        IAsyncDisposable running;
        System.Net.IPEndPoint bound;
        try
        {
            switch (verb)
            {
                case "server":
                    var server = new ServerTcpRelay(relay, new SystemDnsResolver(relay.Ipv6First), TaskPoolScheduler.Default, TimeProvider.System);
                    server.Start();
                    (running, bound) = (server, server.LocalEndPoint);
                    break;
                case "local":
                    var local = new LocalTcpRelay(relay, TaskPoolScheduler.Default, TimeProvider.System);
                    local.Start();
                    (running, bound) = (local, local.LocalEndPoint);
                    break;
                default:
                    var tunnel = new TunnelRelay(relay, TaskPoolScheduler.Default, TimeProvider.System);
                    tunnel.Start();
                    (running, bound) = (tunnel, tunnel.LocalEndPoint);
                    break;
            }
        }
        catch (SocketException e)
        {
            error.WriteLine($"shadowsocks: cannot listen on {relay.Listen}: {Describe(e)}");
            return ExitCodes.RuntimeFailure;
        }

        var what = verb switch
        {
            "server" => "shadowsocks server",
            "local" => $"shadowsocks local (SOCKS5) via {relay.Server}",
            _ => $"shadowsocks tunnel to {relay.TunnelDestination} via {relay.Server}",
        };
        output.WriteLine($"{what} listening on {bound} tcp, method {relay.Cipher.Name}");
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

        await running.DisposeAsync().ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    private static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => "address already in use (is another proxy running on that port?)",
        SocketError.AddressNotAvailable => "address not available on this machine",
        SocketError.AccessDenied => "permission denied (ports below 1024 need privileges)",
        _ => e.Message,
    };
}
