using System.Globalization;
using System.Net;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// A local whose server does not answer (a wrong port here) says so at the default level, naming the server and the
/// error, once for a burst of failed connections (ss-local logs an error for each); its clients get SOCKS5's refusal.
/// </summary>
public sealed class ServerUnreachableWarningTests
{
    [Fact]
    public async Task ALocalWhoseServerRefuses_GetsOneWarningLine_NamingTheServer()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var closedPort = LoopbackPorts.Next(); // nothing listens there
        var environment = new Dictionary<string, string> { ["SHADOWSOCKS_PASSWORD"] = "any" };
        var (local, localAt) = await HostProcess.StartAsync(environment, "local", "-s", "127.0.0.1",
            "-p", closedPort.ToString(CultureInfo.InvariantCulture), "-l", LoopbackPorts.Next().ToString(CultureInfo.InvariantCulture), "-m", "aes-256-gcm");
        using var _ = local;

        for (var i = 0; i < 3; i++)
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", 9, cancel.Token);
            socket.Dispose();
            Assert.Equal(5, reply); // connection refused
        }

        var expected = $"cannot connect to server 127.0.0.1:{closedPort}: ConnectionRefused";
        Assert.True(await local.WaitForOutputAsync(expected, TimeSpan.FromSeconds(10)), local.Output);
        await local.StopAsync(TimeSpan.FromSeconds(15));
        var line = Assert.Single(local.Output.Split('\n'), l => l.Contains("cannot connect to server", StringComparison.Ordinal)); // the others are counted
        Assert.Contains(" WARN: ", line, StringComparison.Ordinal);
        Assert.Contains(IPAddress.Loopback.ToString(), line, StringComparison.Ordinal);
    }
}
