using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting.Systemd;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Loopback;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// SIGTERM on the real program: the listener closes at once, an open transfer finishes within the grace period, then
/// the process exits 0; under systemd (NOTIFY_SOCKET) it reports READY=1 once listening and STOPPING=1 on the signal.
/// </summary>
public sealed class ShutdownTests
{
    [Fact]
    public async Task Sigterm_StopsAccepting_LetsOpenTransferFinish_ExitsZero()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        using var chain = await HostChain.StartAsync(new Dictionary<string, string>(), "grace", localArgs: ["--shutdown-grace", "30"]);
        var (server, local, localAt) = (chain.Server, chain.Local, chain.LocalAt);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using (socket)
        {
            Assert.Equal(0, reply);
            await EchoAsync(socket, 1000, cancel.Token);

            local.SendSigterm();
            await WaitUntilRefusedAsync(localAt, cancel.Token); // no new connections...
            Assert.False(local.HasExited);
            await EchoAsync(socket, 200_000, cancel.Token);   // ...but the open one goes on
            Assert.False(local.HasExited);
        }

        Assert.Equal(0, await local.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("stopping: listener closed, 1 connection open, waiting up to 30 s for it", local.Output, StringComparison.Ordinal);
        var (took, exit) = await server.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, exit);
        Assert.True(took < TimeSpan.FromSeconds(3), $"an idle server took {took} to stop");
        Assert.Contains("stopping: listener closed, no connections open", server.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sigterm_FreesTheUdpPortAtOnce_SoARestartTakesIt_WhileAConnectionFinishes()
    {
        // A restart by hand (stop, start) or ss-manager's remove and add of a port: the UDP socket held through the
        // grace made the new process fail on "address already in use" (ss-manager: "port is not available").
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var environment = new Dictionary<string, string> { ["SHADOWSOCKS_PASSWORD"] = "udp-restart" };
        string[] serverArgs = ["server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-m", "aes-256-gcm", "-u", "--forbidden-ip", "", "--shutdown-grace", "60"];
        var (server, serverAt) = await HostProcess.StartAsync(environment, serverArgs);
        using var _ = server;
        string[] tunnelArgs = ["tunnel", "-s", "127.0.0.1", "-p", Port(serverAt), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()),
            "-L", $"127.0.0.1:{Port(destination.EndPoint)}", "-m", "aes-256-gcm", "-u", "--shutdown-grace", "60"];
        var (tunnel, tunnelAt) = await HostProcess.StartAsync(environment, tunnelArgs);
        using var __ = tunnel;

        using var held = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await held.ConnectAsync(tunnelAt, cancel.Token);
        await EchoAsync(held, 1000, cancel.Token); // open through both, and stays open

        foreach (var (old, args) in new[] { (tunnel, tunnelArgs), (server, serverArgs) })
        {
            old.SendSigterm();
            Assert.True(await old.WaitForOutputAsync("1 connection open", TimeSpan.FromSeconds(30)), old.Output);
            var (again, _) = await HostProcess.StartAsync(environment, args); // same TCP and UDP port
            using (again)
            {
                Assert.False(old.HasExited); // still in its grace, the connection open
            }
        }
    }

    [Fact]
    public async Task Sigterm_WaitsForAResetsQueuedBytesToBeDelivered_WithinTheGrace()
    {
        // A destination delivers 1 MiB to the server and resets; the client reads slowly, so most of it sits in the
        // local's send queue toward the client, held there until delivered before the reset goes (ResetAfterDelivery).
        // A SIGTERM then must not end the process (and discard that queue) while the grace period lasts.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var chain = await HostChain.StartAsync(new Dictionary<string, string>(), "grace", localArgs: ["--shutdown-grace", "30"]);
        var (client, reply) = await Socks5TestClient.ConnectAsync(chain.LocalAt, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port, cancel.Token, receiveBuffer: 16 << 10);
        using var clientOwner = client;
        Assert.Equal(0, reply);
        await client.SendAsync("hello"u8.ToArray(), SocketFlags.None, cancel.Token);
        using var destination = await listener.AcceptAsync(cancel.Token);
        await Socks5TestClient.ReadExactlyAsync(destination, new byte[5], cancel.Token);

        var answer = new byte[1 << 20];
        Random.Shared.NextBytes(answer);
        await destination.SendAsync(answer, SocketFlags.None, cancel.Token);
        for (var i = 0; i < 1000 && Shadowsocks.Pipeline.Core.Multiplexing.SocketIo.UnsentBytes(destination) != 0; i++)
        {
            await Task.Delay(5, cancel.Token);
        }

        destination.LingerState = new LingerOption(true, 0);
        destination.Close(); // RST: the whole answer is at the server
        await Task.Delay(300, cancel.Token); // the reset passes through both relays, the tail still queued toward the client
        chain.Local.SendSigterm();

        var received = 0;
        var buffer = new byte[8 << 10];
        var end = SocketError.Success;
        try
        {
            while (await client.ReceiveAsync(buffer, SocketFlags.None, cancel.Token) is var n and > 0)
            {
                received += n;
                await Task.Delay(2, cancel.Token);
            }
        }
        catch (SocketException e)
        {
            end = e.SocketErrorCode;
        }

        Assert.Equal(answer.Length, received);
        Assert.Equal(SocketError.ConnectionReset, end);
        Assert.Equal(0, await chain.Local.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Sigterm_EndsADrainedProbeAtOnce_WithAFin_WhileARelayedAndASilentConnectionKeepTheirGrace()
    {
        // A probe's drain (a failed header: read and discard, send nothing) carries no user's data: a stop must not
        // wait the grace for it (every restart of a scanned server took the whole grace). A relayed connection, and a
        // client that has sent nothing yet (it may be a slow real one), keep theirs.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        using var chain = await HostChain.StartAsync(new Dictionary<string, string>(), "drained-probe", serverArgs: ["--shutdown-grace", "30"]);
        var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.LocalAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var relayed = socket;
        Assert.Equal(0, reply);
        await EchoAsync(relayed, 1000, cancel.Token);

        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(chain.ServerAt, cancel.Token);
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await probe.ConnectAsync(chain.ServerAt, cancel.Token);
        await probe.SendAsync(System.Security.Cryptography.RandomNumberGenerator.GetBytes(100), SocketFlags.None, cancel.Token);
        Assert.True(await chain.Server.WaitForOutputAsync("failed authentication", TimeSpan.FromSeconds(20)), chain.Server.Output); // drained now

        var sinceStop = System.Diagnostics.Stopwatch.StartNew();
        chain.Server.SendSigterm();

        // The probe: nothing, then a FIN (not a reset), long before the grace (or the idle timeout) would end its drain.
        using (var probeDeadline = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token))
        {
            probeDeadline.CancelAfter(TimeSpan.FromSeconds(15));
            try
            {
                var received = await probe.ReceiveAsync(new byte[64], SocketFlags.None, probeDeadline.Token); // a reset would throw
                Assert.Equal(0, received);
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
            {
                Assert.Fail($"the drained probe was still open 15 s after SIGTERM (grace 30 s). Server output: {chain.Server.Output}");
            }
        }

        Assert.True(await chain.Server.WaitForOutputAsync("stopping: listener closed", TimeSpan.FromSeconds(20)), chain.Server.Output);
        Assert.Contains("stopping: listener closed, 2 connections open, waiting up to 30 s for them", chain.Server.Output, StringComparison.Ordinal);
        Assert.False(silent.Poll(0, SelectMode.SelectRead), "the silent client was closed by the stop"); // readable would be its end
        await EchoAsync(relayed, 1000, cancel.Token); // the relayed one goes on
        Assert.False(chain.Server.HasExited);

        relayed.Shutdown(SocketShutdown.Both);
        silent.Shutdown(SocketShutdown.Both);
        Assert.Equal(0, await chain.Server.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.True(sinceStop.Elapsed < TimeSpan.FromSeconds(15), $"the server took {sinceStop.Elapsed} to stop once its connections ended (grace 30 s)");
    }

    [Fact]
    public async Task AStopWhileTheServersNameIsLookedUp_EndsTheStartAtOnce_ExitZero()
    {
        // A name server that never answers holds the UDP side's one lookup of the server's name. A stop then went
        // unheard until the lookup gave up, and the program exited 1 with "cannot look up the server".
        using var silentDns = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silentDns.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var dns = (IPEndPoint)silentDns.LocalEndPoint!;
        using var stop = new CancellationTokenSource();
        var error = new StringWriter();
        var run = Shadowsocks.Pipeline.Hosts.Program.RunAsync(
            ["local", "-s", "server.invalid-name.test", "-p", "8388", "-l", "0", "-k", "x", "-u", "-d", $"127.0.0.1:{dns.Port}"],
            new StringWriter(), error, stop.Token);
        var query = new byte[512];
        await silentDns.ReceiveFromAsync(query, new IPEndPoint(IPAddress.Any, 0)); // the lookup is under way
        stop.Cancel();

        Assert.Equal(0, await run);
        Assert.DoesNotContain("cannot look up", error.ToString());
    }

    [Fact]
    public async Task ASigtermWhileStarting_EndsWithTheLinesOfANormalStop_ExitZero()
    {
        // The real program, its server's name held by a name server that never answers: SIGTERM before it listens.
        // It flushed telemetry and exited 0 in silence; a normal stop's last lines were missing ("stopped").
        using var silentDns = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silentDns.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var dns = (IPEndPoint)silentDns.LocalEndPoint!;
        using var local = HostProcess.Launch(null, new Dictionary<string, string>(),
            "local", "-s", "server.invalid-name.test", "-p", "8388", "-b", "127.0.0.1", "-l", "0", "-k", "x", "-u", "-d", $"127.0.0.1:{dns.Port}");
        using var lookup = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await silentDns.ReceiveFromAsync(new byte[512], new IPEndPoint(IPAddress.Any, 0), lookup.Token); // the lookup is under way
        local.SendSigterm();

        Assert.Equal(0, await local.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var lines = local.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.DoesNotContain(lines, static l => l.Contains(" listening on ", StringComparison.Ordinal));
        Assert.Contains(lines, static l => l.EndsWith("INFO: stopping: before the start finished", StringComparison.Ordinal));
        Assert.EndsWith("INFO: stopped", lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnderSystemd_NotifiesReadyThenStopping()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var path = Path.Combine(Path.GetTempPath(), $"notify-{Guid.NewGuid():N}.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(path));
        try
        {
            var environment = new Dictionary<string, string> { ["NOTIFY_SOCKET"] = path };
            var (server, _) = await HostProcess.StartAsync(environment, "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "systemd", "-m", "aes-256-gcm");
            using var host = server;
            Assert.Equal(ServiceState.Ready.ToString(), await ReceiveAsync(notify, cancel.Token));
            host.SendSigterm();
            Assert.Equal(ServiceState.Stopping.ToString(), await ReceiveAsync(notify, cancel.Token));
            Assert.Equal(0, await host.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static async Task<string> ReceiveAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[256];
        var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
        return System.Text.Encoding.ASCII.GetString(buffer, 0, n);
    }

    private static async Task EchoAsync(Socket socket, int bytes, CancellationToken cancellationToken)
    {
        var sent = new byte[bytes];
        Random.Shared.NextBytes(sent);
        var receiving = Task.Run(async () =>
        {
            var received = new byte[bytes];
            await Socks5TestClient.ReadExactlyAsync(socket, received, cancellationToken);
            return received;
        }, cancellationToken);
        await socket.SendAsync(sent, SocketFlags.None, cancellationToken);
        Assert.Equal(sent, await receiving);
    }

    private static async Task WaitUntilRefusedAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            using var probe = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await probe.ConnectAsync(endPoint, cancellationToken);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset)
            {
                // Refused: nothing listens. Reset: the SYN met the listener just as it closed (the kernel aborts
                // the half-open connection). Either way the port no longer accepts.
                return;
            }

            await Task.Delay(50, cancellationToken);
        }

        Assert.Fail($"{endPoint} still accepts connections after SIGTERM");
    }
}
