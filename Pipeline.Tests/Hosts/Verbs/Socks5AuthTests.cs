using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// <c>local --socks5-auth FILE</c> on the program: curl logs in and fetches through it; a refused login is said (never
/// its password); SIGHUP reloads the file; a bad file stops the start with one line.
/// </summary>
public sealed class Socks5AuthTests : IDisposable
{
    private const string Method = "aes-256-gcm";
    private const string Password = "socks5-auth";
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"ss-socks5-users-{Guid.NewGuid():N}");

    public void Dispose() => File.Delete(_file);

    [Fact]
    public async Task Curl_LogsIn_AndFetchesThroughTheLocal()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        File.WriteAllText(_file, "alice:wonderland\n");
        await using var web = new TinyHttpServer("through a login");
        var (server, local, localAt) = await StartChainAsync();
        using var _ = server;
        using var __ = local;

        var output = await Curl.RunAsync(
            ["-sS", "--max-time", "30", "--socks5", $"alice:wonderland@127.0.0.1:{localAt.Port}", $"http://127.0.0.1:{web.EndPoint.Port}/"], cancel.Token);
        Assert.Equal("through a login", output);
    }

    [Fact]
    public async Task AWrongPassword_IsRefused_AndSaid_WithoutThePassword()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        File.WriteAllText(_file, "alice:wonderland\n");
        var (server, local, localAt) = await StartChainAsync("-v");
        using var _ = server;
        using var __ = local;

        using (var client = await ConnectAsync(localAt, cancel.Token))
        {
            Assert.Equal(1, await Socks5TestClient.LogInAsync(client, "alice", "not-the-password", cancel.Token));
            Assert.Empty(await Socks5TestClient.ReadToEndAsync(client, cancel.Token));
        }

        Assert.True(await local.WaitForOutputAsync("a SOCKS5 client was refused at login: wrong user name or password", TimeSpan.FromSeconds(30)), local.Output);
        Assert.True(await local.WaitForOutputAsync("socks5: wrong user name or password (user 'alice')", TimeSpan.FromSeconds(30)), local.Output); // -v: the connection's line
        Assert.DoesNotContain("not-the-password", local.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sighup_ReloadsTheUsers_AndEndsTheConnectionsOfOneTakenOff()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        File.WriteAllText(_file, "alice:a\ncarol:c\n");
        await using var echo = new EchoDestination();
        var (server, local, localAt) = await StartChainAsync();
        using var _ = server;
        using var __ = local;
        var (alices, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", echo.EndPoint.Port, cancel.Token, login: ("alice", "a"));
        using var ___ = alices;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(alices, 1024, cancel.Token, halfClose: false); // open, relaying

        File.WriteAllText(_file, "bob:b\ncarol:c\n");
        local.Signal("HUP");
        Assert.True(await local.WaitForOutputAsync(
            "socks5 users reloaded: 2 users (1 added, 1 removed, 0 with a new password); 1 of their connections ended", TimeSpan.FromSeconds(30)), local.Output);

        Assert.Empty(await Socks5TestClient.ReadUntilClosedAsync(alices, cancel.Token)); // alice's open connection ended
        using (var client = await ConnectAsync(localAt, cancel.Token))
        {
            Assert.Equal(1, await Socks5TestClient.LogInAsync(client, "alice", "a", cancel.Token));
        }

        var (bobs, bobsReply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", echo.EndPoint.Port, cancel.Token, login: ("bob", "b"));
        using var ____ = bobs;
        Assert.Equal(0, bobsReply);
        await Transfer.EchoRoundTripAsync(bobs, 1024, cancel.Token);
        Assert.False(local.HasExited);
    }

    [Fact]
    public async Task Sighup_WithABadFile_ChangesNothing_AndSaysWhy()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        File.WriteAllText(_file, "alice:a\n");
        var (server, local, localAt) = await StartChainAsync();
        using var _ = server;
        using var __ = local;

        File.WriteAllText(_file, "alice:a\nbob\n");
        local.Signal("HUP");
        Assert.True(await local.WaitForOutputAsync($"shadowsocks: socks5 users not reloaded: --socks5-auth: {_file} line 2: no ':'", TimeSpan.FromSeconds(30)), local.Output);
        using var client = await ConnectAsync(localAt, cancel.Token);
        Assert.Equal(0, await Socks5TestClient.LogInAsync(client, "alice", "a", cancel.Token));
    }

    [Theory]
    [InlineData("alice:x\nbob\n", "line 2: no ':' between user name and password; write user:password, one user a line")]
    [InlineData("alice:\n", "line 1: user 'alice' has an empty password; give one after ':'")]
    [InlineData("# nobody yet\n", "has no users; write one user:password a line")]
    public async Task ABadFile_StopsTheStart_NamingTheLineAndTheFix(string text, string expected)
    {
        File.WriteAllText(_file, text);
        var error = new StringWriter();
        var code = await Program.RunAsync(LocalArgs(new IPEndPoint(IPAddress.Loopback, 8388)), new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.StartsWith($"shadowsocks: --socks5-auth: {_file} {expected}", error.ToString());
    }

    [Fact]
    public async Task AMissingFile_IsOneLine()
    {
        var error = new StringWriter();
        var code = await Program.RunAsync(LocalArgs(new IPEndPoint(IPAddress.Loopback, 8388)), new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.StartsWith($"shadowsocks: --socks5-auth: cannot read {_file}: no such file; give the path of a file of user:password lines", error.ToString());
    }

    [Theory]
    [InlineData("server")]
    [InlineData("tunnel")]
    public async Task OnAnotherVerb_IsRefused(string verb)
    {
        File.WriteAllText(_file, "alice:a\n");
        var error = new StringWriter();
        var code = await Program.RunAsync(
            [verb, "-s", "127.0.0.1", "-p", "8388", "-l", Port(LoopbackPorts.Next()), "-L", "127.0.0.1:53", "-k", Password, "--socks5-auth", _file],
            new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Contains("--socks5-auth: only a local has a SOCKS5 port to log in to; remove it", error.ToString(), StringComparison.Ordinal);
    }

    private async Task<(HostProcess Server, HostProcess Local, IPEndPoint LocalAt)> StartChainAsync(params string[] more)
    {
        var environment = new Dictionary<string, string>();
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method, "--forbidden-ip", "");
        try
        {
            var (local, localAt) = await HostProcess.StartAsync(environment, [.. LocalArgs(serverAt), .. more]);
            return (server, local, localAt);
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    private string[] LocalArgs(IPEndPoint serverAt) =>
        ["local", "-s", "127.0.0.1", "-p", Port(serverAt), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method, "--socks5-auth", _file];

    private static async Task<Socket> ConnectAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint, cancellationToken);
        return socket;
    }
}
