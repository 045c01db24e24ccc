using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Core.Scheduling;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Hosts.Logging;
using Shadowsocks.Pipeline.Hosts.Service;
using Shadowsocks.Pipeline.Hosts.Telemetry;
using Shadowsocks.Pipeline.Stages.Connect;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Hosts.Verbs;

/// <summary><c>shadowsocks local|server|tunnel</c>: start the relay, print one line when listening, run until SIGINT/SIGTERM.</summary>
internal static class RelayVerb
{
    /// <summary>How long the UDP side's one lookup of a server name may take at start.</summary>
    private static readonly TimeSpan ServerLookupTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long a SIP003 plugin may take to open its port.</summary>
    private static readonly TimeSpan PluginStartTimeout = TimeSpan.FromSeconds(10);

    public static async Task<int> RunAsync(string verb, ParsedArguments args, TextWriter output, TextWriter error, CancellationToken stop)
    {
        var settings = HostSettings.Build(verb, args);
        if (settings.PidFile is { } pidFile && !Daemon.IsChild)
        {
            return await Daemon.StartAsync(pidFile, output, error, stop).ConfigureAwait(false);
        }

        if (settings.PidFile is not null)
        {
            Daemon.Detach();
        }

        foreach (var warning in settings.Warnings) // here, not before: in the background the child says it, once
        {
            error.WriteLine($"shadowsocks: {warning}");
        }

        // A server reloads its users on SIGHUP (systemctl reload), a multi-user one that is; one with a single key says
        // there is nothing to reload rather than stop, and so does a server still starting. A local with SOCKS5 users
        // (--socks5-auth) reloads them the same way. Registered first and disposed last, so that no SIGHUP while
        // starting or stopping takes SIGHUP's default (the process's end). A tunnel, or a local without SOCKS5 users,
        // keeps that default (a closed terminal stops it).
        Func<Func<HostSettings>, (bool Applied, string Line)>? usersReload = null;
        using var hangUp = verb != "server" && settings.Relay.Socks5Users is null ? null : PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            var reload = Volatile.Read(ref usersReload);
            _ = Task.Run(() =>
            {
                try
                {
                    var (applied, line) = reload?.Invoke(() => HostSettings.Build(verb, args))
                        ?? (false, "SIGHUP: nothing to reload (a multi-user server reloads its users, a local its SOCKS5 users, once listening; other settings take effect on restart)");

                    // Stamped as the log lines are: a reload can come weeks after the start.
                    var stamp = LogLineForm.ForProcess().Prefix(TimeProvider.System);
                    (applied ? output : error).WriteLine(applied ? $"{stamp}{line}" : $"{stamp}shadowsocks: {line}");
                }
                catch (Exception e)
                {
                    // Not expected (Apply answers every refusal in its line): said, never lost, never the process's end.
                    try
                    {
                        error.WriteLine($"{LogLineForm.ForProcess().Prefix(TimeProvider.System)}shadowsocks: users reload failed: {e.GetType().Name}: {e.Message}");
                    }
                    catch (IOException)
                    {
                        // Nowhere to say it (a closed terminal).
                    }
                }
            });
        });

        var tcp = settings.Mode != RelayMode.UdpOnly || verb == "local"; // SOCKS5 UDP ASSOCIATE needs the TCP side
        var udpOnly = settings.Mode == RelayMode.UdpOnly; // a local's SOCKS5 port then takes UDP ASSOCIATE only
        var udp = settings.Mode != RelayMode.TcpOnly;
        if (PrepareProcess(settings, tcp, udp, error) is not { } prepared)
        {
            return ExitCodes.Usage;
        }

        var (relay, openFiles) = prepared;

        // SIP003: with a plugin the TCP side talks to it over loopback. The local and tunnel connect to the port the
        // plugin listens on (it connects on to the server); the server listens on a loopback port of its own behind
        // the plugin, which takes the public address. UDP does not go through plugins: it keeps the server's address.
        var plugin = udpOnly ? null : settings.Plugin; // with -U no CONNECT is relayed, not even a local's (HostSettings warns)
        var pluginPort = plugin is not null && verb != "server" ? new IPEndPoint(IPAddress.Loopback, FreeLoopbackPort()) : null;
        var tcpRelay = plugin is null ? relay
            : verb == "server" ? relay with { Listen = new IPEndPoint(IPAddress.Loopback, 0), MoreListens = [] }
            : relay with { Server = pluginPort, FallbackServers = [] };

        // Prometheus's GET /metrics (telemetry.metrics_listen, --metrics): listening before the relays start, so that
        // their first connections are counted, and refused before any relay port opens and before telemetry is set up
        // (a refused address is a settings error: its one line, no final flush, no trace file left behind).
        using var collector = settings.Telemetry.MetricsListen is null ? null : new PrometheusCollector();
        MetricsEndpoint? metricsEndpoint = null;
        if (settings.Telemetry.MetricsListen is { } metricsAt)
        {
            var (started, failed) = MetricsEndpoint.Start(metricsAt, collector!.Scrape, TimeProvider.System);
            if (started is null)
            {
                error.WriteLine($"shadowsocks: {settings.Label("telemetry:metrics_listen")} cannot listen on {metricsAt}: {DescribeMetricsListen(failed!)}");
                return ExitCodes.Usage;
            }

            metricsEndpoint = started;
        }

        await using var metrics = metricsEndpoint;

        TelemetrySetup telemetrySetup;
        try
        {
            telemetrySetup = TelemetrySetup.Start(verb, settings.Telemetry);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"shadowsocks: {settings.Label("telemetry:traces")} cannot write a trace file in {settings.Telemetry.TracesDirectory}: {e.Message.TrimEnd('.')}; give a writable folder");
            return ExitCodes.Usage;
        }

        using var telemetry = telemetrySetup;

        // Before the first port opens: a connection accepted at once must find its span listened to (with -v).
        var lineForm = LogLineForm.ForProcess();
        using var loggers = HostLogging.Create(settings.Verbose, lineForm, TimeProvider.System);
        var log = loggers.CreateLogger("shadowsocks");
        using var connections = settings.Verbose ? new ConnectionLog(loggers.CreateLogger("shadowsocks.connections")) : null;
        using var udpDrops = settings.Verbose && udp ? new UdpDropLog(loggers.CreateLogger("shadowsocks.udp"), TimeProvider.System) : null;
        // At every level: a peer with another password, a server that does not answer, a collector that is not there.
        using var authenticationFailures = FailureWarning.Authentication(log, TimeProvider.System);
        using var serverUnreachable = verb == "server" ? null : FailureWarning.ServerUnreachable(log, TimeProvider.System);
        using var serverCircuits = verb == "server" ? null : new ServerCircuitLog(log);
        using var socks5Logins = relay.Socks5Users is null ? null : FailureWarning.Socks5Login(log, TimeProvider.System);
        using var forbiddenDestinations = verb == "server" ? FailureWarning.ForbiddenDestination(log, TimeProvider.System) : null;
        using var outOfFiles = FailureWarning.OutOfFiles(log, TimeProvider.System, openFiles);
        using var telemetryExport = telemetry.OtlpDescription is null ? null : FailureWarning.TelemetryExport(log, TimeProvider.System);
        using var traceFileFailures = telemetry.TraceFile is null ? null : FailureWarning.TraceFile(log, TimeProvider.System);

        // Every exit from here on (SIGINT/SIGTERM, a plugin that exits, a start refused, a port in use, an exception)
        // flushes telemetry once and says a failed flush in one line: the final flush's failures get a line of their own,
        // not the running warnings' (which may not write one), so those stop listening first.
        void FinalFlush()
        {
            telemetryExport?.Dispose();
            traceFileFailures?.Dispose();
            telemetry.Stop(log);
        }

        try
        {
            var running = new List<IAsyncDisposable>();

            // The last lines of a stop, after the grace or at a signal while starting: what still runs stops, the final
            // flush (its line, if it failed, before the last one), "stopped"; exit 1 if a part did not stop cleanly (it
            // may have left something behind).
            async Task<int> StoppedAsync(int failures)
            {
                failures += await RunningParts.StopAsync(running, error).ConfigureAwait(false);
                FinalFlush();
                log.LogInformation("stopped");
                return failures == 0 ? ExitCodes.Ok : ExitCodes.RuntimeFailure;
            }

            try
            {
                IPEndPoint bound;
                IPEndPoint[] moreBound = [];
                PluginProcess? pluginProcess = null;
                try
                {
                    (bound, var tcpBound, moreBound, usersReload) = await StartAsync(verb, relay, tcpRelay, settings.Nameservers, tcp, udp, udpOnly, running, log, stop).ConfigureAwait(false);
                    if (plugin is not null)
                    {
                        // A server's plugin listens on every address of the server ("a|b", as ss-server passes them).
                        var (remoteHost, remotePort) = verb == "server" ? (PluginListenHosts(relay), relay.Listen.Port) : HostAndPort(relay.Server!);
                        var (pluginLocal, pluginListens) = verb == "server" ? (tcpBound!, relay.Listen) : (pluginPort!, pluginPort!);
                        if (await StartPluginAsync(plugin, remoteHost, remotePort, pluginLocal, pluginListens, settings.User, running, error, stop).ConfigureAwait(false) is not { } started)
                        {
                            return ExitCodes.RuntimeFailure;
                        }

                        pluginProcess = started;
                    }
                }
                catch (SocketException e)
                {
                    // The address that failed: a server has several (TCP and UDP on each), and the first is not always it.
                    error.WriteLine($"shadowsocks: cannot listen on {(e is ListenException failed ? failed.Where : relay.Listen)}: {Describe(e)}");
                    return ExitCodes.RuntimeFailure;
                }
                catch (ServerLookupException e)
                {
                    error.WriteLine($"shadowsocks: {e.Message}");
                    return ExitCodes.RuntimeFailure;
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    // SIGINT or SIGTERM while starting (a server name being looked up, a plugin not yet listening): stop
                    // now, with the last lines of a stop once listening (nothing to drain: no start line was said).
                    log.LogInformation("stopping: before the start finished");
                    return await StoppedAsync(failures: 0).ConfigureAwait(false);
                }

                if (settings.PidFile is { } pidPath)
                {
                    try
                    {
                        PidFile.Write(pidPath);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        error.WriteLine($"shadowsocks: {settings.Label("pid_file")} cannot write {pidPath}: {e.Message.TrimEnd('.')}; give a path in a folder this user can write");
                        return ExitCodes.RuntimeFailure;
                    }
                }

                // The ports are open and the pid file written: root is no longer needed. Before the line that says it
                // listens: -f's parent takes that line as the start having succeeded, so a refused switch must come first.
                if (settings.User is { } user && UserSwitch.To(user) is { } refused)
                {
                    error.WriteLine($"shadowsocks: {settings.Label("user")} {refused}");
                    return ExitCodes.Usage;
                }

                var what = verb switch
                {
                    "server" => "shadowsocks server",
                    "local" => $"shadowsocks local (SOCKS5) via {Servers(relay)}",
                    _ => $"shadowsocks tunnel to {relay.TunnelDestination} via {Servers(relay)}",
                };
                var protocols = (tcp && !udpOnly, udp) switch { (true, true) => "tcp and udp", (true, false) => "tcp", _ => verb == "local" ? "udp (SOCKS5: UDP ASSOCIATE only)" : "udp" };
                // Stamped as the logger's lines are; the text after the stamp is read (" listening on ") by Daemon and tests.
                output.WriteLine($"{lineForm.Prefix(TimeProvider.System)}{what} listening on {bound}{string.Concat(moreBound.Select(static b => $" and {b}"))} {protocols}, method {relay.Cipher.Name}{(plugin is null ? "" : $", plugin {plugin.Name}")}");
                if (relay.FastOpen && FastOpenSupport.Check(verb) is { } fastOpenWarning)
                {
                    error.WriteLine($"shadowsocks: {fastOpenWarning}");
                }

                if (telemetry.TraceFile is { } traceFile)
                {
                    output.WriteLine($"traces: {traceFile} (Jaeger UI: Search -> Upload)");
                }

                if (telemetry.OtlpDescription is { } otlp)
                {
                    output.WriteLine($"telemetry: OTLP traces and metrics to {otlp}");
                }

                if (metrics is not null)
                {
                    output.WriteLine($"metrics: http://{metrics.LocalEndPoint}{MetricsEndpoint.ScrapePath} (Prometheus text format)");
                }

                var p = relay.Pipeline;
                log.LogDebug("pipeline (max_parallelism/bounded_capacity): handshake {Handshake}, resolve {Resolve}, connect {Connect}, encrypt {Encrypt}, decrypt {Decrypt}, forward {Forward}, udp {Udp}; read_budget_mib {ReadBudget}",
                    Tuning(p.Handshake), Tuning(p.Resolve), Tuning(p.Connect), Tuning(p.Encrypt), Tuning(p.Decrypt), Tuning(p.Forward), Tuning(p.Udp), p.ReadBudgetMiB);
                log.LogDebug("limits: timeout {Timeout} s, udp_timeout {UdpTimeout} s, {UdpMax}max_connections {MaxConnections}, {Handshake}connect_timeout {ConnectTimeout} s, shutdown_grace {Grace} s, {Forbidden}open files {Nofile}",
                    relay.IdleTimeout.TotalSeconds, relay.UdpTimeout.TotalSeconds,
                    udp ? $"udp_max_associations {relay.UdpMaxAssociations}, " : "", // as fitted to the open-file limit; without UDP, none
                    relay.MaxConnections,
                    verb == "local" ? $"handshake_timeout {relay.HandshakeTimeout.TotalSeconds} s, " : "", // only a local has a SOCKS5 handshake to time
                    relay.ConnectTimeout.TotalSeconds, settings.ShutdownGrace.TotalSeconds,
                    verb == "server" ? $"forbidden_ip {(relay.Forbidden.ToString() is { Length: > 0 } forbidden ? forbidden : "none")}, " : "", openFiles); // only a server has destinations to forbid

                output.Flush();
                using var manager = settings.ManagerAddress is { } managerAddress ? new ManagerReport(managerAddress, bound.Port, TimeProvider.System) : null;
                var systemd = new SystemdNotifier();
                using var trim = new IdleMemoryTrim(TimeProvider.System, ChunkPool.Shared);

                if (systemd.IsEnabled)
                {
                    systemd.Notify(ServiceState.Ready);
                }

                var stopped = Task.Delay(Timeout.Infinite, stop);
                if (pluginProcess is not null && await Task.WhenAny(stopped, pluginProcess.Exited).ConfigureAwait(false) != stopped)
                {
                    // SIP003: a plugin that exits takes the relay with it (its traffic has nowhere to go).
                    error.WriteLine($"shadowsocks: plugin {pluginProcess.Settings.Name} exited with code {await pluginProcess.Exited.ConfigureAwait(false)}; stopping");
                    return ExitCodes.RuntimeFailure;
                }

                try
                {
                    await stopped.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // SIGINT or SIGTERM: stop accepting, let open connections finish within the grace period, close.
                }

                if (systemd.IsEnabled)
                {
                    systemd.Notify(ServiceState.Stopping);
                }

                // No more traffic reports: ss-manager has removed this port (or is stopping it), and a new process it
                // starts on the same port reports its own; this one's totals would alternate with them during the grace.
                manager?.Dispose();
                var drainFailures = await DrainAsync(running, settings.ShutdownGrace, TimeProvider.System, log, settings.PidFile, error).ConfigureAwait(false);
                return await StoppedAsync(drainFailures).ConfigureAwait(false);
            }
            finally
            {
                // Every exit once something has started (a refusal, a plugin that exits, a signal while starting, an
                // unexpected exception; the stop after the grace has stopped it already, and nothing stops twice):
                // what is still running stops, the last started first. The pid file, then the plugin (a child process:
                // left running, it would outlive us holding the public port, and the next start would find that port
                // in use), then the relays.
                if (settings.PidFile is { } file)
                {
                    PidFile.Remove(file);
                }

                await RunningParts.StopAsync(running, error).ConfigureAwait(false); // a failure is said; the exit code is the one returned
            }
        }
        finally
        {
            FinalFlush(); // nothing the second time: on SIGINT/SIGTERM it ran before "stopped"
        }
    }

    /// <summary>The servers a local or tunnel goes through, as its start line names them: the first, then the others in order.</summary>
    private static string Servers(RelayOptions relay) =>
        relay.FallbackServers.Count == 0
            ? ServerFailover.Name(relay.Server!)
            : $"{ServerFailover.Name(relay.Server!)} (then {string.Join(", ", relay.FallbackServers.Select(ServerFailover.Name))})";

    /// <summary>
    /// Before any port opens: the settings that can refuse the start (one line each), the open-file limit (raised to
    /// the hard limit, or <c>-n</c>), and <c>max_connections</c> fitted to it. Null when refused.
    /// </summary>
    private static (RelayOptions Relay, ulong OpenFiles)? PrepareProcess(HostSettings settings, bool tcp, bool udp, TextWriter error)
    {
        if (settings.Relay.Mptcp && !MultipathAvailable())
        {
            error.WriteLine($"shadowsocks: {settings.Label("mptcp")} this kernel offers no Multipath TCP (it needs Linux 5.6+ with net.mptcp.enabled=1); enable it, or leave Multipath TCP off");
            return null;
        }

        if (settings.Relay.OutboundInterface is { } networkInterface && OutboundCheck.Interface(networkInterface) is { } noInterface)
        {
            error.WriteLine($"shadowsocks: {settings.Label(settings.OutboundInterfaceKey)} {noInterface}");
            return null;
        }

        if (settings.User is { } runAs && UserSwitch.Check(runAs) is { } cannotSwitch)
        {
            error.WriteLine($"shadowsocks: {settings.Label("user")} {cannotSwitch}");
            return null;
        }

        // Each connection holds two descriptors: the default soft limit (1,024) would stop accepts near 500.
        ulong openFiles;
        if (settings.Nofile is { } nofile)
        {
            if (FileLimit.Set((ulong)nofile) is { } why)
            {
                error.WriteLine($"shadowsocks: {settings.Label("nofile")} cannot set the open-file limit to {nofile}: {why}");
                return null;
            }

            openFiles = (ulong)nofile;
        }
        else
        {
            openFiles = FileLimit.RaiseToHard();
        }

        var (maxConnections, udpAssociations, budgetWarning) = OpenFileBudget.Fit(
            settings.Relay.MaxConnections, openFiles, udp ? settings.Relay.UdpMaxAssociations : 0, settings.MaxConnectionsSet, settings.UdpMaxAssociationsSet, tcp,
            addresses: 1 + settings.Relay.MoreListens.Count); // a server's: an accept loop and a UDP relay on each
        if (budgetWarning is not null)
        {
            error.WriteLine($"shadowsocks: {budgetWarning}");
        }

        return (settings.Relay with { MaxConnections = maxConnections, UdpMaxAssociations = udp ? udpAssociations : settings.Relay.UdpMaxAssociations }, openFiles);
    }

    /// <summary>
    /// Starts the plugin (it goes into <paramref name="running"/>, so it is ended with the relays, after the drain) and
    /// waits until it listens. Null, with one line on <paramref name="error"/>, when it cannot start or does not listen.
    /// </summary>
    private static async Task<PluginProcess?> StartPluginAsync(
        PluginSettings plugin, string remoteHost, int remotePort, IPEndPoint local, IPEndPoint listens, string? user, List<IAsyncDisposable> running, TextWriter error,
        CancellationToken stop)
    {
        PluginProcess process;
        try
        {
            process = PluginProcess.Start(plugin, remoteHost, remotePort, local, error, user);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            error.WriteLine($"shadowsocks: plugin: cannot start {plugin.Executable}: {e.Message}");
            return null;
        }

        running.Add(process);
        if (await process.WaitListeningAsync(listens, PluginStartTimeout, TimeProvider.System, stop).ConfigureAwait(false) is { } notListening)
        {
            error.WriteLine($"shadowsocks: {notListening}");
            return null;
        }

        return process;
    }

    /// <summary>
    /// <c>SS_REMOTE_HOST</c> for a server's plugin: every address the server listens on, joined by '|' as ss-server
    /// does. A <c>::</c> that takes IPv4 as well (not <c>ipv6_only</c>, no IPv4 address beside it) is followed by
    /// <c>0.0.0.0</c>: a plugin may bind <c>::</c> IPv6-only (simple-obfs's obfs-server does), and the TCP side would
    /// then refuse the IPv4 clients that the UDP side, on our own dual-stack socket, serves.
    /// </summary>
    private static string PluginListenHosts(RelayOptions relay) =>
        string.Join('|', relay.MoreListens.Prepend(relay.Listen).SelectMany(l =>
            l.Address.Equals(IPAddress.IPv6Any) && !relay.ListenIpv6Only ? new[] { "::", "0.0.0.0" } : [l.Address.ToString()]));

    /// <summary>A loopback port free right now, for a local's plugin to listen on (as ss-libev picks one).</summary>
    private static int FreeLoopbackPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static (string Host, int Port) HostAndPort(System.Net.EndPoint server) => server switch
    {
        IPEndPoint ip => (ip.Address.ToString(), ip.Port),
        System.Net.DnsEndPoint dns => (dns.Host, dns.Port),
        _ => throw new ArgumentException($"unexpected server end point {server}", nameof(server)),
    };

    private static bool MultipathAvailable()
    {
        try
        {
            StreamSockets.Open(AddressFamily.InterNetwork, multipath: true).Dispose();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string Tuning(StageOptions stage) => $"{stage.MaxParallelism}/{stage.BoundedCapacity}";

    /// <summary>
    /// Closes the TCP listeners and the server's and tunnel's UDP relays, and waits until no connection is open, and no
    /// reset waits for its far end to have what was queued toward it (<see cref="ResetAfterDelivery"/>: closing the
    /// process would discard it), or until <paramref name="grace"/> has passed. The pid file goes with the listeners.
    /// Returns how many UDP relays failed to stop (each said on <paramref name="error"/>: the drain goes on).
    /// </summary>
    private static async Task<int> DrainAsync(List<IAsyncDisposable> running, TimeSpan grace, TimeProvider time, ILogger log, string? pidFile, TextWriter error)
    {
        var failed = 0;
        var tcpRelays = running.OfType<ITcpRelay>().ToList();
        foreach (var relay in tcpRelays)
        {
            relay.StopAccepting();
        }

        // UDP has no connection to finish: its socket closes with the listeners, so the port is free at once for a
        // restart (or ss-manager's remove and add), as ss-server's is. The local's stays: its associations belong to
        // TCP control connections, which have the grace.
        foreach (var udp in running.Where(static r => r is ServerUdpRelay or TunnelUdpRelay).ToList())
        {
            running.Remove(udp);
            failed += await RunningParts.StopOneAsync(udp, error).ConfigureAwait(false) ? 0 : 1;
        }

        // No longer serving: a new instance with the same -f may start while open connections finish (ss-manager's
        // remove then add of a port, which a live pid file refused). The file goes only if it still names us.
        if (pidFile is not null)
        {
            PidFile.Remove(pidFile);
        }

        // A server's drained clients (failed, carrying no user's data) were ended with its listener, and are not waited for.
        var open = tcpRelays.Sum(r => r.ServingSessions);
        if (open == 0)
        {
            log.LogInformation("stopping: listener closed, no connections open");
        }
        else
        {
            log.LogInformation("stopping: listener closed, {Open} connection{S} open, waiting up to {Grace} s for {Them}",
                open, open == 1 ? "" : "s", grace.TotalSeconds, open == 1 ? "it" : "them");
        }

        var started = time.GetTimestamp();
        while ((tcpRelays.Sum(r => r.ServingSessions) > 0 || ResetAfterDelivery.Shared.Count > 0) && time.GetElapsedTime(started) < grace)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), time, CancellationToken.None).ConfigureAwait(false);
        }

        return failed;
    }

    /// <summary>
    /// Starts the verb's TCP and/or UDP relays on one address and port (as ss-libev does); returns that endpoint and the
    /// TCP listener's. <paramref name="tcpRelay"/> is <paramref name="relay"/> unless a plugin sits on the TCP side:
    /// then the server's TCP listener is on a loopback port of its own (the plugin has the public one) and the local's
    /// and tunnel's TCP server is the plugin's port.
    /// </summary>
    private static async Task<(IPEndPoint Bound, IPEndPoint? TcpBound, IPEndPoint[] MoreBound, Func<Func<HostSettings>, (bool Applied, string Line)>? Reload)> StartAsync(
        string verb, RelayOptions relay, RelayOptions tcpRelay, IPEndPoint[]? nameservers, bool tcp, bool udp, bool udpOnly, List<IAsyncDisposable> running, ILogger log,
        CancellationToken stop)
    {
        // Every open connection keeps one pending idle timer on this scheduler: a one-shot timer each (Rx's
        // TaskPoolScheduler's would be a Task.Delay with its own cancellation, ≈ 610 bytes), and no timer of its own
        // (Rx's ThreadPoolScheduler would wake an idle process every 30 seconds: TimeProviderScheduler says why).
        var scheduler = new TimeProviderScheduler(TimeProvider.System);
        var listen = relay.Listen;

        // The program's own resolver: the hosts file, then -d / "nameserver", else resolv.conf; stopped with the relays.
        DnsResolver OpenResolver()
        {
            // RES_OPTIONS overrides resolv.conf's timeout:N and attempts:N, as glibc applies it (without -d only).
            var resolver = new DnsResolver(
                new DnsResolverOptions { Servers = nameservers, Ipv6First = relay.Ipv6First, ResOptions = Environment.GetEnvironmentVariable("RES_OPTIONS") },
                scheduler,
                TimeProvider.System);
            running.Add(new DisposeAsync(resolver));
            return resolver;
        }

        if (verb == "server")
        {
            // One resolver for the TCP and UDP relays' destinations, and one replay filter for all their salts (as ss-server;
            // a 2022 method's UDP checks packet IDs instead).
            var resolver = OpenResolver();
            var replays = SaltFilters.For(relay, TimeProvider.System);
            var users = ServerUsers.For(relay); // a multi-user server's table: built once (10,000 users take about 150 ms)
            var reload = users is null ? null : new UsersReload(users, relay.Cipher, relay.MasterKey);
            IPEndPoint? tcpBound = null;
            IPEndPoint[] listens = [listen, .. relay.MoreListens];
            if (tcp)
            {
                var server = new ServerTcpRelay(tcpRelay, resolver, scheduler, TimeProvider.System, replays, users);
                running.Add(server);
                server.Start();
                reload?.Serve(server);
                tcpBound = server.LocalEndPoint;
                listens = ReferenceEquals(tcpRelay, relay) ? [.. server.LocalEndPoints] : listens; // behind a plugin, UDP keeps the public address
            }

            if (udp)
            {
                // One UDP relay per address, each on the TCP listener's port (as ss-server).
                for (var i = 0; i < listens.Length; i++)
                {
                    var serverUdp = new ServerUdpRelay(relay, resolver, scheduler, replays, users: users);
                    running.Add(serverUdp);
                    serverUdp.Start(listens[i]);
                    reload?.Serve(serverUdp);
                    listens[i] = serverUdp.LocalEndPoint;
                }
            }

            return (listens[0], tcpBound, listens[1..], reload is null ? null : reload.Apply);
        }

        // A server given by name: the program's own resolver looks it up (TCP: per connection, the answer kept for its
        // TTL, where .NET's connect would ask the system resolver every time; UDP: here, at start, and again as the
        // answer expires, for the NAT sockets: UdpServerAddress).
        System.Net.EndPoint[] udpServers = [relay.Server!, .. relay.FallbackServers];
        var serverNames = (tcp && new[] { tcpRelay.Server! }.Concat(tcpRelay.FallbackServers).Any(s => s is System.Net.DnsEndPoint))
            || (udp && udpServers.Any(s => s is System.Net.DnsEndPoint))
            ? OpenResolver()
            : null;
        var serverEndPoint = udp ? await UdpServerAsync(udpServers, serverNames, log, stop).ConfigureAwait(false) : null;

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

            // With an ACL the local looks destination names up itself, to decide by their addresses (as ss-local does).
            var routeNames = relay.Acl is null ? null : serverNames ?? OpenResolver();
            var local = new LocalTcpRelay(tcpRelay with { Listen = listen }, scheduler, TimeProvider.System, localUdp, serverNames, routeNames, udpOnly);
            running.Add(local);
            local.Start();
            if (udp && !udpOnly)
            {
                FollowCircuits(serverEndPoint!, local.Servers, log);
            }
            return (local.LocalEndPoint, local.LocalEndPoint, [], relay.Socks5Users is { } socks5Users ? new Socks5UsersReload(socks5Users, local).Apply : null);
        }

        TunnelRelay? tunnelTcp = null;
        if (tcp)
        {
            tunnelTcp = new TunnelRelay(tcpRelay, scheduler, TimeProvider.System, serverNames);
            running.Add(tunnelTcp);
            tunnelTcp.Start();
            listen = tunnelTcp.LocalEndPoint;
        }

        if (udp)
        {
            if (tunnelTcp is not null)
            {
                FollowCircuits(serverEndPoint!, tunnelTcp.Servers, log);
            }

            var tunnelUdp = new TunnelUdpRelay(relay, serverEndPoint!, scheduler);
            running.Add(tunnelUdp);
            tunnelUdp.Start(listen);
            listen = tunnelUdp.LocalEndPoint;
        }

        return (listen, tcp ? listen : null, [], null);
    }

    /// <summary>
    /// With TCP relayed too (not <c>-U</c>), UDP follows TCP's circuits to another server (<see cref="UdpServerAddress.Follow"/>):
    /// one line a move, naming the server it leaves and the one it goes to, once per outage as the circuits' own lines.
    /// A plugin carries one server (no fallback servers with it), so its circuits never move UDP.
    /// </summary>
    private static void FollowCircuits(UdpServerAddress udp, ServerFailover servers, ILogger log)
    {
        udp.Moved += (from, to, failed) =>
        {
            if (failed)
            {
                log.LogWarning("udp: server {From} failed: UDP moves to {To}", ServerFailover.Name(from), ServerFailover.Name(to));
            }
            else
            {
                log.LogInformation("udp: server {To} answers again: UDP moves back to it from {From}", ServerFailover.Name(to), ServerFailover.Name(from));
            }
        };
        udp.Follow(servers);
    }

    /// <summary>
    /// The server the UDP relays send to: the first, in order, whose address is found (a name through the program's
    /// resolver, looked up again as its answer expires: <see cref="UdpServerAddress"/>). A server whose name does not
    /// resolve at start is passed over for the next, with one line saying which server UDP goes to (TCP tries them all
    /// for each connection); when none resolves, the first one's reason stops the program.
    /// </summary>
    private static async Task<UdpServerAddress> UdpServerAsync(System.Net.EndPoint[] servers, IDnsResolver? resolver, ILogger log, CancellationToken stop)
    {
        ServerLookupException? first = null;
        foreach (var server in servers)
        {
            IPEndPoint address;
            try
            {
                address = await ResolveServerAsync(server, resolver, stop).ConfigureAwait(false);
            }
            catch (ServerLookupException e)
            {
                first ??= e;
                continue;
            }

            if (first is not null)
            {
                log.LogWarning("udp: {Failure}; UDP goes to the next server that resolves, {Server}", first.Message, ServerFailover.Name(server));
            }

            return new UdpServerAddress(servers, Array.IndexOf(servers, server), address, resolver, TimeProvider.System);
        }

        throw first!;
    }

    /// <summary>The server's address up front: a name is looked up through the program's resolver.</summary>
    private static async Task<IPEndPoint> ResolveServerAsync(System.Net.EndPoint server, IDnsResolver? resolver, CancellationToken stop)
    {
        if (server is IPEndPoint ip)
        {
            return ip;
        }

        var dns = (System.Net.DnsEndPoint)server;
        IPAddress[] addresses;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
            timeout.CancelAfter(ServerLookupTimeout);
            addresses = await resolver!.ResolveAsync(dns.Host, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when ((e is SocketException or OperationCanceledException or IOException) && !stop.IsCancellationRequested)
        {
            throw new ServerLookupException(dns.Host, e is OperationCanceledException ? "no answer in time" : e.Message);
        }

        return addresses.Length > 0
            ? new IPEndPoint(addresses[0], dns.Port)
            : throw new ServerLookupException(dns.Host, resolver!.FailureReason(dns.Host) ?? "no address");
    }

    /// <summary>Why <c>--metrics</c> cannot listen, and what to do.</summary>
    private static string DescribeMetricsListen(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => "address already in use (another program has that port); give a free port, or leave it out",
        SocketError.AddressNotAvailable => "address not available on this machine; give one of its addresses, e.g. 127.0.0.1",
        SocketError.AccessDenied => "permission denied (ports below 1024 need privileges); give a port from 1024",
        _ => $"{e.Message}; give another ADDR:PORT, or leave it out",
    };

    private static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => "address already in use (is another proxy running on that port?)",
        SocketError.AddressNotAvailable => "address not available on this machine",
        SocketError.AccessDenied => "permission denied (ports below 1024 need privileges)",
        _ => e.Message,
    };
}
