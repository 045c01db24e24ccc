using System.Globalization;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// <c>-v</c> on the real program: the settings in effect at start, one line per connection (closed, or failed with
/// the stage and reason), the stop; never the password or the key; no colour codes when the output is not a terminal.
/// </summary>
public sealed class VerboseLoggingTests
{
    private const string Password = "do-not-log-me-3141";

    private const string Stamp = @"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}";

    [Fact]
    public async Task Verbose_LogsSettingsAndConnections_NeverThePassword()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var environment = new Dictionary<string, string> { ["SHADOWSOCKS_PASSWORD"] = Password };
        var (server, serverAt) = await HostProcess.StartAsync(environment, "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-m", "aes-256-gcm",
            "--forbidden-ip", "", "-v", "-c", WriteConfig());
        using var _ = server;

        var (client, reply) = await Socks5TestClient.ConnectAsync(await LocalAsync(serverAt.Port, environment), "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using (client)
        {
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(client, 10_000, cancel.Token);
        }

        var refusedPort = LoopbackPorts.Next(); // nothing listens there
        var (failing, failingReply) = await Socks5TestClient.ConnectAsync(_localAt!, "127.0.0.1", refusedPort, cancel.Token);
        using (failing)
        {
            Assert.Equal(0, failingReply); // the local answers once it reaches the server; the server then fails to connect
            await failing.SendAsync("hello"u8.ToArray(), System.Net.Sockets.SocketFlags.None, cancel.Token);
            await Socks5TestClient.ReadUntilClosedAsync(failing, cancel.Token);
        }

        // Each connection's line is written as it closes: waited for (a fixed 500 ms could pass first on a loaded
        // machine, and the stop then ended a connection before it had closed by itself). The assertions below tell.
        await server.WaitForOutputAsync($"-> 127.0.0.1:{Port(destination.EndPoint.Port)} closed after", TimeSpan.FromSeconds(20));
        await server.WaitForOutputAsync($"-> 127.0.0.1:{Port(refusedPort)} failed after", TimeSpan.FromSeconds(20));
        await _local!.StopAsync(TimeSpan.FromSeconds(10));
        await server.StopAsync(TimeSpan.FromSeconds(10));

        var log = server.Output;
        Assert.Contains(" DEBUG: pipeline (max_parallelism/bounded_capacity): handshake 1024/4096, resolve 7/1024", log, StringComparison.Ordinal);
        Assert.Contains($"-> 127.0.0.1:{Port(destination.EndPoint.Port)} closed after", log, StringComparison.Ordinal);
        Assert.True(log.Contains($"-> 127.0.0.1:{Port(refusedPort)} failed after", StringComparison.Ordinal), log);
        Assert.Contains("connect: cannot connect", log, StringComparison.Ordinal);
        // In a file or pipe each line, the start line too, has the local date and time; no event id or category.
        Assert.Matches($@"(?m)^{Stamp} shadowsocks server listening on 127\.0\.0\.1:{Port(serverAt.Port)} tcp", log);
        Assert.Matches($@"(?m)^{Stamp} DEBUG: limits: ", log);
        Assert.Matches($@"(?m)^{Stamp} DEBUG: server connection 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:{Port(destination.EndPoint.Port)} closed after", log);
        Assert.Matches($@"(?m)^{Stamp} INFO: stopped\r?$", log);
        Assert.DoesNotContain("[0]", log, StringComparison.Ordinal);
        Assert.Matches("limits: .*, forbidden_ip none, open files", log); // given as '' on the server's command line
        Assert.Contains("limits: ", _local.Output, StringComparison.Ordinal);
        Assert.Matches(@"limits: .*, udp_max_associations \d+, ", _local.Output); // -u: it has UDP
        Assert.DoesNotContain("udp_max_associations", log, StringComparison.Ordinal); // TCP only: no associations to limit
        Assert.DoesNotContain("forbidden_ip", _local.Output, StringComparison.Ordinal); // a local has no destinations to forbid
        Assert.Matches(@"limits: .*, handshake_timeout 10 s, connect_timeout 10 s, ", _local.Output);
        Assert.Matches(@"limits: .*, max_connections \d+, connect_timeout 10 s, ", log); // a server has no handshake timeout
        Assert.DoesNotContain(Password, log + _local.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", log, StringComparison.Ordinal); // no ANSI colour codes into a pipe
    }

    [Fact]
    public async Task Verbose_ATunnelsConnectionLine_NamesItsFixedDestination()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var environment = new Dictionary<string, string> { ["SHADOWSOCKS_PASSWORD"] = Password };
        var (server, serverAt) = await HostProcess.StartAsync(environment, "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-m", "aes-256-gcm",
            "--forbidden-ip", "");
        using var _ = server;
        var (tunnel, tunnelAt) = await HostProcess.StartAsync(environment, "tunnel", "-s", "127.0.0.1", "-p", Port(serverAt.Port), "-b", "127.0.0.1",
            "-l", Port(LoopbackPorts.Next()), "-L", $"localhost:{Port(destination.EndPoint.Port)}", "-m", "aes-256-gcm", "-v");
        using var __ = tunnel;

        using (var client = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            await client.ConnectAsync(tunnelAt, cancel.Token);
            await Transfer.EchoRoundTripAsync(client, 10_000, cancel.Token);
        }

        // The tunnel knows where every connection goes (-L), as the server knows from the header: the line says so.
        var line = $"-> localhost:{Port(destination.EndPoint.Port)} closed after";
        Assert.True(await tunnel.WaitForOutputAsync(line, TimeSpan.FromSeconds(30)), tunnel.Output);
        Assert.DoesNotContain("(no destination)", tunnel.Output, StringComparison.Ordinal);
    }

    private HostProcess? _local;
    private System.Net.IPEndPoint? _localAt;

    private async Task<System.Net.IPEndPoint> LocalAsync(int serverPort, Dictionary<string, string> environment)
    {
        (_local, _localAt) = await HostProcess.StartAsync(environment, "local", "-s", "127.0.0.1", "-p", Port(serverPort),
            "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-m", "aes-256-gcm", "-u", "-v");
        return _localAt;
    }

    private static string WriteConfig()
    {
        var path = Path.Combine(Path.GetTempPath(), $"verbose-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{ "pipeline": { "resolve": { "max_parallelism": 7 } } }""");
        return path;
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);
}
