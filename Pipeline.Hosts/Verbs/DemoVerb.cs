using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Scheduling;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Hosts.Demo;
using Shadowsocks.Pipeline.Hosts.Logging;
using Shadowsocks.Pipeline.Hosts.Telemetry;
using Shadowsocks.Pipeline.Stages.Relay;

namespace Shadowsocks.Pipeline.Hosts.Verbs;

/// <summary>
/// <c>shadowsocks demo</c>: a server and a local in this process on loopback with a random key, a self-check
/// transfer through the chain, then the SOCKS5 address and a curl line to try; runs until Ctrl-C
/// (<c>--check</c>: exit after the self-check).
/// </summary>
internal static class DemoVerb
{
    /// <summary>The SOCKS5 port the demo tries first (ss-local's customary 1080); a free one if it is taken.</summary>
    private const int PreferredSocksPort = 1080;

    /// <summary>Self-check payload: large enough to measure, small enough to take well under a second.</summary>
    private const int SelfCheckBytes = 64 * 1024 * 1024;

    /// <summary>Where the demo writes its trace files unless --traces says otherwise.</summary>
    private const string DefaultTracesDirectory = "traces";

    public static async Task<int> RunAsync(ParsedArguments args, TextWriter output, TextWriter error, CancellationToken stop)
    {
        var methodName = args.Value(Flags.DemoMethod) ?? "aes-256-gcm";
        if (!CipherCatalog.TryGet(methodName, out var cipher, out var methodError))
        {
            throw new UsageException(methodError!);
        }

        var traces = args.Value(Flags.Traces);
        TelemetrySetup telemetrySetup;
        try
        {
            telemetrySetup = TelemetrySetup.Start("demo", new TelemetrySettings(traces ?? DefaultTracesDirectory, null, null));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // As local and server say it; it threw out of the verb (a stack trace), also for the default folder in a
            // working directory this user cannot write.
            error.WriteLine(traces is null
                ? $"shadowsocks: demo: cannot write a trace file in {Path.GetFullPath(DefaultTracesDirectory)} (the default of --traces): {e.Message.TrimEnd('.')}; run it from a folder you can write, or give --traces DIR"
                : $"shadowsocks: --traces: cannot write a trace file in {traces}: {e.Message.TrimEnd('.')}; give a writable folder");
            return ExitCodes.Usage;
        }

        using var telemetry = telemetrySetup;

        // A trace file that cannot be written (a full disk) is said as the relays say it, at the default level.
        using var loggers = HostLogging.Create(verbose: false, LogLineForm.ForProcess(), TimeProvider.System);
        var log = loggers.CreateLogger("shadowsocks");
        var traceFileFailures = FailureWarning.TraceFile(log, TimeProvider.System);
        (int Exit, bool Stopped) result;
        try
        {
            result = await RunDemoAsync(args, cipher, telemetry, output, error, stop).ConfigureAwait(false);
        }
        finally
        {
            // The final flush's failures: one line of their own, on every way out.
            traceFileFailures.Dispose();
            telemetry.Stop(log);
        }

        if (result.Stopped)
        {
            // Last, as the relays' "stopped": after the flush's line, which the console logger writes on a thread of its
            // own (disposing it writes what it holds).
            loggers.Dispose();
            output.WriteLine("demo: stopped");
        }

        return result.Exit;
    }

    /// <summary>
    /// The relays, the self-check and the wait for Ctrl-C, with telemetry and its warnings set up; the exit code, and
    /// whether Ctrl-C (SIGINT/SIGTERM) ended the wait. The relays are closed when it returns.
    /// </summary>
    private static async Task<(int Exit, bool Stopped)> RunDemoAsync(ParsedArguments args, CipherInfo cipher, TelemetrySetup telemetry, TextWriter output, TextWriter error, CancellationToken stop)
    {
        var key = RandomNumberGenerator.GetBytes(cipher.KeySize == 0 ? 16 : cipher.KeySize);
        var serverOptions = new RelayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0), Cipher = cipher, MasterKey = key };
        var scheduler = new TimeProviderScheduler(TimeProvider.System);
        await using var server = new ServerTcpRelay(serverOptions, new SystemDnsResolver(), scheduler, TimeProvider.System);
        server.Start();

        LocalTcpRelay? local = null;
        foreach (var port in new[] { PreferredSocksPort, 0 })
        {
            var localOptions = serverOptions with { Listen = new IPEndPoint(IPAddress.Loopback, port), Server = server.LocalEndPoint };
            local = new LocalTcpRelay(localOptions, scheduler, TimeProvider.System);
            try
            {
                local.Start();
                break;
            }
            catch (SocketException) when (port != 0)
            {
                await local.DisposeAsync().ConfigureAwait(false);
            }
        }

        await using var _ = local!;
        await using var destination = new DemoDestination();
        output.WriteLine($"demo: server on {server.LocalEndPoint}, local (SOCKS5) on {local!.LocalEndPoint}, method {cipher.Name}, random key");

        using var checkTimeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        checkTimeout.CancelAfter(TimeSpan.FromSeconds(60));
        var (ok, rate) = await SelfCheck.RunAsync(local.LocalEndPoint, destination.EndPoint, SelfCheckBytes, checkTimeout.Token).ConfigureAwait(false);
        if (!ok)
        {
            error.WriteLine("demo: self-check FAILED: the echoed bytes differ");
            return (ExitCodes.RuntimeFailure, false);
        }

        output.WriteLine($"demo: self-check passed: {SelfCheckBytes / (1024 * 1024)} MiB each way through local -> server -> echo, {rate:F0} MiB/s");
        output.WriteLine($"demo: SOCKS5 proxy ready at {local.LocalEndPoint}");
        output.WriteLine($"demo: try:  curl --socks5-hostname {local.LocalEndPoint} http://{destination.EndPoint}/");
        output.WriteLine($"demo: traces of every connection go to {telemetry.TraceFile} (open it in Jaeger: Search -> Upload; see traces/README.md)");
        output.WriteLine("demo: Ctrl-C to stop");
        output.Flush();
        if (args.Has(Flags.Check))
        {
            return (ExitCodes.Ok, false);
        }

        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return (ExitCodes.Ok, true);
        }

        return (ExitCodes.Ok, false);
    }
}
