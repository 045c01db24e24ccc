using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// The local's ACL (<c>--acl</c>): which destinations it reaches directly and which through the server, decided as
/// ss-local decides. Each case runs through our local and through ss-local with the same file, both to our server,
/// which sends from 127.0.0.2 (<c>-b</c>): the destination tells a direct connection (from 127.0.0.1) from one through
/// the server by its source, and both locals must agree with the expected route.
/// </summary>
public sealed class LocalAclTests : IAsyncLifetime
{
    private const string Password = "acl-route";
    private const string Method = "aes-256-gcm";
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"ss-local-acl-{Guid.NewGuid():N}.acl");
    private readonly Socket _destination = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private HostProcess? _server;
    private IPEndPoint _serverAt = null!;

    public async Task InitializeAsync()
    {
        _destination.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _destination.Listen(16);
        (_server, _serverAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-b", "127.0.0.2", "-k", Password, "-m", Method, "--forbidden-ip", "");
    }

    public Task DisposeAsync()
    {
        _server?.Dispose();
        _destination.Dispose();
        File.Delete(_file);
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData("[proxy_all]\n[bypass_list]\n127.0.0.0/8\n", "127.0.0.1", true)]
    [InlineData("[bypass_all]\n[proxy_list]\n127.0.0.1\n", "127.0.0.1", false)]
    [InlineData("[bypass_all]\n", "127.0.0.1", true)]
    [InlineData("[proxy_all]\n", "127.0.0.1", false)]
    [InlineData("[proxy_all]\n[bypass_list]\n^localhost$\n", "localhost", true)]
    [InlineData("[bypass_all]\n[proxy_list]\n^localhost$\n", "localhost", false)]
    [InlineData("[proxy_all]\n[bypass_list]\n127.0.0.0/8\n", "localhost", true)] // no rule for the name: its address decides
    [InlineData("[bypass_all]\n[proxy_list]\n127.0.0.1/32\n", "localhost", false)]
    [InlineData("[bypass_all]\n[proxy_list] # through the server\n127.0.0.1 # the destination\n", "127.0.0.1", false)] // '#' anywhere starts a comment
    public async Task RoutesAsSsLocalDoes(string acl, string host, bool direct)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        File.WriteAllText(_file, acl);
        string[] common = ["-s", "127.0.0.1", "-p", Port(_serverAt), "-k", Password, "-m", Method, "--acl", _file];

        var (ours, oursAt) = await HostProcess.StartAsync(new Dictionary<string, string>(), ["local", "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), .. common]);
        using (ours)
        {
            Assert.Equal(direct ? IPAddress.Loopback : IPAddress.Parse("127.0.0.2"), await SourceSeenAsync(oursAt, host, cancel.Token));
        }

        await using var libev = await LibevPeer.StartAsync("ss-local", common);
        Assert.Equal(direct ? IPAddress.Loopback : IPAddress.Parse("127.0.0.2"), await SourceSeenAsync(libev.EndPoint, host, cancel.Token));
    }

    /// <summary>
    /// A request of type domain that spells an address out goes where the request of type IPv4 goes: ss-local asks only
    /// the address lists for it, never the host-name rules (ours asked the rules too, and sent it directly).
    /// </summary>
    [Theory]
    [InlineData("[proxy_all]\n[bypass_list]\n^127\\.\n", false)] // a host-name rule: not for addresses
    [InlineData("[proxy_all]\n[bypass_list]\n127.0.0.0/8\n", true)]
    [InlineData("[bypass_all]\n[proxy_list]\n^127\\.0\\.0\\.1$\n", true)]
    public async Task AnAddressSentAsAName_GoesWhereTheAddressGoes(string acl, bool direct)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        File.WriteAllText(_file, acl);
        string[] common = ["-s", "127.0.0.1", "-p", Port(_serverAt), "-k", Password, "-m", Method, "--acl", _file];
        var expected = direct ? IPAddress.Loopback : IPAddress.Parse("127.0.0.2");

        var (ours, oursAt) = await HostProcess.StartAsync(new Dictionary<string, string>(), ["local", "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), .. common]);
        using (ours)
        {
            Assert.Equal(expected, await SourceSeenAsync(oursAt, "127.0.0.1", cancel.Token));
            Assert.Equal(expected, await SourceSeenAsync(oursAt, "127.0.0.1", cancel.Token, asName: true));
        }

        await using var libev = await LibevPeer.StartAsync("ss-local", common);
        Assert.Equal(expected, await SourceSeenAsync(libev.EndPoint, "127.0.0.1", cancel.Token));
        Assert.Equal(expected, await SourceSeenAsync(libev.EndPoint, "127.0.0.1", cancel.Token, asName: true));
    }

    [Fact]
    public async Task ADirectDestinationThatRefuses_GetsTheSocks5ConnectionRefusedReply()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        File.WriteAllText(_file, "[bypass_all]\n");
        var (ours, oursAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "local", "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-s", "127.0.0.1", "-p", Port(_serverAt), "-k", Password, "-m", Method, "--acl", _file);
        using var _ = ours;
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0)); // bound, not listening: connections to it are refused
        var (socket, reply) = await Socks5TestClient.ConnectAsync(oursAt, "127.0.0.1", ((IPEndPoint)closed.LocalEndPoint!).Port, cancel.Token);
        socket.Dispose();
        Assert.Equal(5, reply);
    }

    [Fact]
    public async Task Verbose_SaysWhichConnectionsWentDirect()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        File.WriteAllText(_file, "[proxy_all]\n[bypass_list]\n^localhost$\n");
        var (ours, oursAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "local", "-v", "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-s", "127.0.0.1", "-p", Port(_serverAt), "-k", Password, "-m", Method, "--acl", _file);
        using var _ = ours;
        await SourceSeenAsync(oursAt, "localhost", cancel.Token);
        await SourceSeenAsync(oursAt, "127.0.0.1", cancel.Token);

        // A connection's line is written as it closes: waited for (a fixed 300 ms could pass first on a loaded machine,
        // and the stop then ended the connection before it had closed by itself). The assertions below tell.
        var port = Port((IPEndPoint)_destination.LocalEndPoint!);
        await ours.WaitForOutputAsync($"-> localhost:{port} (direct, by the ACL) closed after", TimeSpan.FromSeconds(20));
        await ours.WaitForOutputAsync($"-> 127.0.0.1:{port} closed after", TimeSpan.FromSeconds(20));
        await ours.StopAsync(TimeSpan.FromSeconds(10));

        Assert.True(ours.Output.Contains($"-> localhost:{port} (direct, by the ACL) closed after", StringComparison.Ordinal), ours.Output);
        Assert.Contains($"-> 127.0.0.1:{port} closed after", ours.Output);
    }

    [Fact]
    public async Task OnATunnel_IsRefusedRatherThanIgnored()
    {
        File.WriteAllText(_file, "[bypass_all]\n");
        var error = new StringWriter();
        var code = await Program.RunAsync(
            ["tunnel", "-s", "127.0.0.1", "-p", "8388", "-l", Port(LoopbackPorts.Next()), "-L", "127.0.0.1:53", "-k", Password, "--acl", _file],
            new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.StartsWith("shadowsocks: --acl: a tunnel has one fixed destination", error.ToString());
    }

    /// <summary>Connects through <paramref name="proxy"/> (an address as a name: <paramref name="asName"/>), echoes a few bytes, and returns where the destination saw the connection come from.</summary>
    private async Task<IPAddress> SourceSeenAsync(IPEndPoint proxy, string host, CancellationToken cancellationToken, bool asName = false)
    {
        var accepting = _destination.AcceptAsync(cancellationToken).AsTask();
        var (socket, reply) = await Socks5TestClient.ConnectAsync(proxy, host, ((IPEndPoint)_destination.LocalEndPoint!).Port, cancellationToken, asName: asName);
        using var _ = socket;
        Assert.Equal(0, reply);
        var payload = RandomNumberGenerator.GetBytes(1000);
        await socket.SendAsync(payload, SocketFlags.None, cancellationToken);
        using var accepted = await accepting;
        var received = new byte[payload.Length];
        await Socks5TestClient.ReadExactlyAsync(accepted, received, cancellationToken);
        Assert.Equal(payload, received); // the bytes arrive as sent, either way
        await accepted.SendAsync(received, SocketFlags.None, cancellationToken);
        var echoed = new byte[payload.Length];
        await Socks5TestClient.ReadExactlyAsync(socket, echoed, cancellationToken);
        Assert.Equal(payload, echoed);
        return ((IPEndPoint)accepted.RemoteEndPoint!).Address;
    }
}
