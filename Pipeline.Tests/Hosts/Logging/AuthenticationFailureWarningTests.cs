using System.Globalization;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// The commonest mistake, a local with another password or method than its server's, shows at the default level: the
/// server says so at once in one line (ss-server logs "authentication error" too), not only with <c>-v</c> once the
/// drained connection ends a timeout later.
/// </summary>
public sealed class AuthenticationFailureWarningTests
{
    [Fact]
    public async Task AClientWithAnotherPassword_GetsOneWarningLine_AtTheDefaultLevel()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var environment = new Dictionary<string, string> { ["SHADOWSOCKS_PASSWORD"] = "the-servers-password" };
        var (server, serverAt) = await HostProcess.StartAsync(environment, "server", "-s", "127.0.0.1",
            "-p", LoopbackPorts.Next().ToString(CultureInfo.InvariantCulture), "-m", "aes-256-gcm");
        using var _ = server;

        // Two clients whose streams are not under the server's key (what a local with another password sends).
        for (var i = 0; i < 2; i++)
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(serverAt, cancel.Token);
            await client.SendAsync(new byte[200], SocketFlags.None, cancel.Token);
        }

        Assert.True(await server.WaitForOutputAsync("failed authentication", TimeSpan.FromSeconds(10)), server.Output);
        await server.StopAsync(TimeSpan.FromSeconds(15));
        var warnings = server.Output.Split('\n').Where(static l => l.Contains("failed authentication", StringComparison.Ordinal)).ToList();
        var line = Assert.Single(warnings); // the second within the minute is counted, not logged
        Assert.Contains(" WARN: ", line, StringComparison.Ordinal);
        Assert.Contains("password or method", line, StringComparison.Ordinal);
    }
}
