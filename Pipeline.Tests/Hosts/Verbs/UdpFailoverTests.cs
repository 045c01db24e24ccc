using System.Net;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>A local with several servers: its UDP follows the server TCP finds working.</summary>
public sealed class UdpFailoverTests
{
    [Fact]
    public async Task LocalWithTwoServers_TheFirstStopped_UdpGoesToTheSecondOnceTcpSkipsTheFirst_AndSaysSo()
    {
        // UDP stayed with the first server for as long as the program ran, though TCP had gone on to the second.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await using var destination = new EchoDestination();
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var environment = new Dictionary<string, string>();
        var (first, firstAt) = await HostProcess.StartAsync(environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "udp-failover", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var _ = first;
        var (second, secondAt) = await HostProcess.StartAsync(environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "udp-failover", "-m", "aes-256-gcm", "--forbidden-ip", "");
        using var __ = second;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-u", "-s", $"127.0.0.1:{Port(firstAt.Port)}", "-s", $"127.0.0.1:{Port(secondAt.Port)}", "-p", Port(firstAt.Port),
            "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "udp-failover", "-m", "aes-256-gcm");
        using var ___ = local;

        using var client = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
        var payload = RandomNumberGenerator.GetBytes(300);
        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
        Assert.Equal(payload, await client.ReceiveAsync(cancel.Token)); // through the first

        await first.StopAsync(TimeSpan.FromSeconds(30));

        // TCP connections until the first server's circuit opens (it refuses: the first connection's attempts open it).
        var moved = $"udp: server 127.0.0.1:{Port(firstAt.Port)} failed: UDP moves to 127.0.0.1:{Port(secondAt.Port)}";
        while (!local.Output.Contains(moved, StringComparison.Ordinal))
        {
            Assert.False(cancel.IsCancellationRequested, $"no line saying UDP moved within the deadline: {local.Output}"); // bounds a failure only
            var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            socket.Dispose();
            Assert.Equal(0, reply); // through the second
            await local.WaitForOutputAsync(moved, TimeSpan.FromSeconds(1));
        }

        // Through the same association, until a datagram is answered: only the second server can answer now (a datagram
        // on its way during the move may be lost).
        byte[]? answer = null;
        for (var i = 0; answer is null; i++)
        {
            Assert.False(cancel.IsCancellationRequested, "no answer through the second server within the deadline"); // bounds a failure only
            await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
            answer = await client.TryReceiveAsync(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(payload, answer);
        Assert.Equal(1, CountOf(local.Output, moved)); // once per outage, not per connection
        Assert.Contains($"server 127.0.0.1:{Port(firstAt.Port)} failed (", local.Output, StringComparison.Ordinal); // TCP's own line, beside it
    }

    private static int CountOf(string text, string line)
    {
        var count = 0;
        for (var at = text.IndexOf(line, StringComparison.Ordinal); at >= 0; at = text.IndexOf(line, at + line.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
