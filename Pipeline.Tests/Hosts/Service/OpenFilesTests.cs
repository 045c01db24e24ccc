using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Hosts;
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

    private static (ulong Soft, ulong Hard) Limits(int pid)
    {
        var line = File.ReadAllLines($"/proc/{pid}/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (ulong.Parse(fields[0], CultureInfo.InvariantCulture), ulong.Parse(fields[1], CultureInfo.InvariantCulture));
    }

    private static int OpenDescriptors(int pid) => Directory.GetFiles($"/proc/{pid}/fd").Length;
}
