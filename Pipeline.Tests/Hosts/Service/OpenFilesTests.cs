using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Hosts.Telemetry;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

/// <summary>The program and its open-file limit: raised at start, set by <c>-n</c>, and never run out of.</summary>
public sealed class OpenFilesTests
{
    [Fact]
    public async Task AtStart_TheSoftLimitGoesUpToTheHardOne()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "shadowsocks.dll");
        var (host, _) = await HostProcess.StartAsync("/bin/sh", new Dictionary<string, string>(),
            "-c", $"ulimit -S -n 300 && exec dotnet '{dll}' server -s 127.0.0.1 -p {Port(LoopbackPorts.Next())} -k files -m aes-256-gcm");
        using var _ = host;
        var (soft, hard) = Limits(host.Id);
        Assert.True(hard > 300, $"the hard limit here is {hard}: nothing to raise to");
        Assert.Equal(hard, soft);
    }

    [Fact]
    public async Task AFloodBeyondTheLimit_WaitsInTheBacklog_AndTheServerGoesOnServing()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var environment = new Dictionary<string, string>();
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "files", "-m", "aes-256-gcm", "--forbidden-ip", "",
            "-n", "512", "--max-connections", "1000");
        using var _ = server;
        Assert.Equal((512UL, Limits(server.Id).Hard), Limits(server.Id));
        Assert.Contains("max_connections 1000 needs about 2256 open files but the limit is 512: at most 128 connections at once", server.Output);

        // 400 silent connections: 800 descriptors if all were accepted. Without the budget the process ran out of
        // descriptors, and the JIT build died ("Out of memory": it could not map code for a new method).
        var flood = new List<Socket>();
        try
        {
            for (var i = 0; i < 400; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                flood.Add(socket);
                await socket.ConnectAsync(serverAt, cancel.Token);
            }

            await Task.Delay(500, cancel.Token);
            Assert.False(server.HasExited, server.Output);
            Assert.True(OpenDescriptors(server.Id) < 512, $"{OpenDescriptors(server.Id)} descriptors open");
        }
        finally
        {
            flood.ForEach(s => s.Dispose());
        }

        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-s", "127.0.0.1", "-p", Port(serverAt.Port), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "files", "-m", "aes-256-gcm");
        using var __ = local;
        var (client, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var ___ = client;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(client, 64 * 1024, cancel.Token);
    }

    [Fact]
    public async Task ALimitTheKernelWillNotGive_StopsWithOneLineNamingTheSetting()
    {
        var error = new StringWriter();
        var code = await Program.RunAsync(
            ["server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "files", "-m", "aes-256-gcm", "-n", "16777216"],
            new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.StartsWith("shadowsocks: -n: cannot set the open-file limit to 16777216: the hard limit is", error.ToString());
        Assert.Contains("fs.nr_open", error.ToString());
    }

    [Fact]
    public async Task ClientsThatResetWhileTheirConnectsHang_LeaveNoDescriptorsBehind()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        using var stalled = new StalledListener();
        var (server, serverAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "files", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var _ = server;
        var before = FirstRequest.SynSentTo(stalled.EndPoint.Port);
        var baseline = OpenSockets(server.Id);

        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < 200; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(serverAt, cancel.Token);
                var request = FirstRequest.For(Options("files"), ShadowsocksAddress.FromEndPoint(stalled.EndPoint), "GET / HTTP/1.0\r\n\r\n"u8); // a salt of its own
                await client.SendAsync(request, SocketFlags.None, cancel.Token);
            }

            while (FirstRequest.SynSentTo(stalled.EndPoint.Port) < before + clients.Count)
            {
                await Task.Delay(50, cancel.Token); // every connect under way
            }
        }
        finally
        {
            clients.ForEach(FirstRequest.Reset);
        }

        await UntilBaselineAsync(server, baseline, cancel.Token);
    }

    [Fact]
    public async Task ConnectionsWaitingForALookup_WhileTheNameServerIsSilent_CloseAsFailedLookups_AndLeaveNoDescriptorsBehind()
    {
        // One lookup at a time, a name server that never answers (each lookup takes the resolver's 8 s): 200
        // connections to 200 names waited 200 x 8 s; each now waits at most the connect timeout (10 s) for its turn.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        using var dns = new FakeDnsServer(static _ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        var metrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var config = Path.Combine(Path.GetTempPath(), $"lookup-wait-{Guid.NewGuid():N}.json");
        File.WriteAllText(config, """{ "pipeline": { "resolve": { "max_parallelism": 1 } } }""");
        try
        {
            var (server, serverAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
                "server", "-c", config, "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "files", "-m", "aes-256-gcm",
                "-d", $"127.0.0.1:{Port(dns.EndPoint)}", "--metrics", metrics.ToString());
            using var _ = server;
            Assert.True(await server.WaitForOutputAsync($"metrics: http://{metrics}/metrics", TimeSpan.FromSeconds(30)), server.Output);
            var options = Options("files");
            var run = Guid.NewGuid().ToString("N")[..8];
            using var http = new HttpClient { Timeout = PrometheusScrape.Deadline };
            http.DefaultRequestHeaders.ConnectionClose = true; // no scrape's connection counted among the server's descriptors
            const string failedLookups = "pipeline_destination_failures_total{pipeline_reason=\"lookup_failed\"}";

            // One first, for what the first lookup opens and keeps (the resolver's sockets): the baseline is after it.
            using (var first = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                await first.ConnectAsync(serverAt, cancel.Token);
                await first.SendAsync(FirstRequest.For(options, ShadowsocksAddress.FromHost($"first.{run}.test", 80)), SocketFlags.None, cancel.Token);
                await PrometheusScrape.UntilAsync(http, metrics, t => PrometheusScrape.Value(t, failedLookups) == 1, cancel.Token);
            }

            var baseline = OpenSockets(server.Id);

            var clients = new List<Socket>();
            try
            {
                for (var i = 0; i < 200; i++)
                {
                    var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    clients.Add(client);
                    await client.ConnectAsync(serverAt, cancel.Token);
                    await client.SendAsync(FirstRequest.For(options, ShadowsocksAddress.FromHost($"n{i}.{run}.test", 80)), SocketFlags.None, cancel.Token);
                }

                // Each counted as a failed lookup, the one or two whose lookups ran included.
                await PrometheusScrape.UntilAsync(http, metrics, t => PrometheusScrape.Value(t, failedLookups) == 1 + clients.Count, cancel.Token);
            }
            finally
            {
                clients.ForEach(static c => c.Dispose());
            }

            await UntilBaselineAsync(server, baseline, cancel.Token);
        }
        finally
        {
            File.Delete(config);
        }
    }

    private static RelayOptions Options(string password) => RelayChain.Options("aes-256-gcm", password, new IPEndPoint(IPAddress.Loopback, 0));

    /// <summary>Waits until the server's open sockets are back at <paramref name="baseline"/> (or fewer).</summary>
    private static async Task UntilBaselineAsync(HostProcess server, int baseline, CancellationToken cancellationToken)
    {
        while (OpenSockets(server.Id) > baseline)
        {
            Assert.False(cancellationToken.IsCancellationRequested, $"{OpenSockets(server.Id)} sockets open, {baseline} before the clients");
            await Task.Delay(100, CancellationToken.None);
        }
    }

    private static (ulong Soft, ulong Hard) Limits(int pid)
    {
        var line = File.ReadAllLines($"/proc/{pid}/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (ulong.Parse(fields[0], CultureInfo.InvariantCulture), ulong.Parse(fields[1], CultureInfo.InvariantCulture));
    }

    private static int OpenDescriptors(int pid) => Directory.GetFiles($"/proc/{pid}/fd").Length;

    /// <summary>
    /// The descriptors of <paramref name="pid"/> that are sockets: not the assemblies the JIT build opens as it first
    /// runs a path (System.Text.RegularExpressions.dll, twice, after 200 failed lookups), which no client holds.
    /// </summary>
    private static int OpenSockets(int pid) =>
        Directory.GetFiles($"/proc/{pid}/fd").Count(static fd => new FileInfo(fd).LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true);
}
