using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// <c>--connect-timeout</c> (<c>connect_timeout</c>): the server's connects to destinations, the local's and tunnel's
/// attempts to a server. It was fixed at 10 s, with no setting.
/// </summary>
public sealed class ConnectTimeoutTests
{
    private const string Password = "connect timeout";

    /// <summary>Well under the default: a close sooner than this came from the setting, not the default.</summary>
    private static readonly TimeSpan UnderTheDefault = TimeSpan.FromSeconds(HostSettings.DefaultConnectTimeoutSeconds - 2);

    [Fact]
    public async Task Server_AConnectThatHangs_ClosesTheClientAtTheConnectTimeoutGiven()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var stalled = new StalledListener();
        var (server, serverAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", Password, "-m", "aes-256-gcm", "--forbidden-ip", "",
            "--connect-timeout", "1", "-v");
        using var _ = server;

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(serverAt, cancel.Token);
        var options = RelayChain.Options("aes-256-gcm", Password, new IPEndPoint(IPAddress.Loopback, 0));
        await client.SendAsync(FirstRequest.For(options, ShadowsocksAddress.FromEndPoint(stalled.EndPoint), "GET / HTTP/1.0\r\n\r\n"u8), SocketFlags.None, cancel.Token);
        var sent = Stopwatch.StartNew();
        await ClosedAsync(client, cancel.Token);

        Assert.True(sent.Elapsed < UnderTheDefault, $"closed after {sent.Elapsed}; the connect timeout given was 1 s");
        Assert.True(await server.WaitForOutputAsync($"cannot connect to {stalled.EndPoint}: timed out", TimeSpan.FromSeconds(30)), server.Output);
        Assert.Contains("connect_timeout 1 s, ", server.Output, StringComparison.Ordinal); // -v's limits line
    }

    [Fact]
    public async Task Local_AServerThatDoesNotAnswer_GetsItsSocks5ReplyAtTheConnectTimeoutGiven()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var stalled = new StalledListener(); // the server: its SYNs dropped
        var (local, localAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "local", "-s", "127.0.0.1", "-p", Port(stalled.EndPoint), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password,
            "-m", "aes-256-gcm", "--connect-timeout", "1");
        using var _ = local;

        var asked = Stopwatch.StartNew();
        var (client, reply) = await Socks5TestClient.ConnectAsync(localAt, "192.0.2.1", 80, cancel.Token);
        using var __ = client;

        Assert.Equal(4, reply); // host unreachable: the server did not answer
        Assert.True(asked.Elapsed < UnderTheDefault, $"the reply came after {asked.Elapsed}; the connect timeout given was 1 s");
    }

    [Fact]
    public async Task Tunnel_AServerThatDoesNotAnswer_ClosesTheClientAtTheConnectTimeoutGiven()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var stalled = new StalledListener();
        var (tunnel, tunnelAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "tunnel", "-s", "127.0.0.1", "-p", Port(stalled.EndPoint), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password,
            "-m", "aes-256-gcm", "-L", "192.0.2.1:80", "--connect-timeout", "1");
        using var _ = tunnel;

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var asked = Stopwatch.StartNew();
        await client.ConnectAsync(tunnelAt, cancel.Token);
        await ClosedAsync(client, cancel.Token);

        Assert.True(asked.Elapsed < UnderTheDefault, $"closed after {asked.Elapsed}; the connect timeout given was 1 s");
    }

    [Theory]
    [InlineData("server")]
    [InlineData("local")]
    public async Task ABadConnectTimeout_StopsTheStartWithOneLineNamingIt(string verb)
    {
        var error = new StringWriter();
        var code = await Program.RunAsync(
            [verb, "-s", "127.0.0.1", "-p", "8388", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", "aes-256-gcm", "--connect-timeout", "0"],
            new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Equal("shadowsocks: --connect-timeout: '0' is not a number from 1 to 3600", error.ToString().TrimEnd());
    }

    /// <summary>Reads until the end of the stream or a reset.</summary>
    private static async Task ClosedAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[256];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // closed with a reset: closed too
        }
    }
}
