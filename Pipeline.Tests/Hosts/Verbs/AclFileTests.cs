using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary><c>--acl FILE</c> on the program: the server applies it to UDP too; a bad or missing file stops the start with one line.</summary>
public sealed class AclFileTests : IDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"ss-acl-{Guid.NewGuid():N}.acl");

    public void Dispose() => File.Delete(_file);

    [Fact]
    public async Task Server_DropsDatagramsToBlockedDestinations_RelaysTheOthers()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        File.WriteAllText(_file, "[outbound_block_list]\n127.0.0.2\n");
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        using var blocked = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        blocked.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        var environment = new Dictionary<string, string>();
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "acl", "-m", "aes-256-gcm", "--forbidden-ip", "", "--acl", _file);
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-u", "-s", "127.0.0.1", "-p", Port(serverAt), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "acl", "-m", "aes-256-gcm");
        using var __ = local;

        using var client = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
        await client.SendAsync("127.0.0.2", ((IPEndPoint)blocked.LocalEndPoint!).Port, "never"u8, cancel.Token);
        var payload = RandomNumberGenerator.GetBytes(300);
        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
        Assert.Equal(payload, await client.ReceiveAsync(cancel.Token)); // sent after the blocked one: that one had its turn
        Assert.False(blocked.Poll(200_000, SelectMode.SelectRead), "a datagram reached a blocked destination");
    }

    [Fact]
    public async Task Verbose_ARefusedClientGetsItsLine()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        File.WriteAllText(_file, "[reject_all]\n[white_list]\n192.0.2.1\n");
        var (server, serverAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "server", "-v", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "acl", "-m", "aes-256-gcm", "--acl", _file);
        using var _ = server;
        using (var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await client.ConnectAsync(serverAt, cancel.Token);
            Assert.Equal(0, await client.ReceiveAsync(new byte[16], SocketFlags.None, cancel.Token)); // closed at once
        }

        await server.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Matches("server connection 127\\.0\\.0\\.1:[0-9]+ -> .* failed after [0-9]+ ms: refused by the ACL", server.Output);
    }

    [Fact]
    public async Task ABadRule_StopsTheStartNamingTheFileAndLine()
    {
        File.WriteAllText(_file, "[black_list]\n10.0.0.1\n[unclosed\n");
        var error = new StringWriter();
        var code = await Program.RunAsync(["server", "-p", Port(LoopbackPorts.Next()), "-k", "acl", "--acl", _file], new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.StartsWith($"shadowsocks: --acl: {_file} line 3: '[unclosed' is neither an address, a network nor a valid regular expression", error.ToString());
    }

    [Fact]
    public async Task AMissingFile_IsOneLine()
    {
        var error = new StringWriter();
        var code = await Program.RunAsync(["server", "-p", Port(LoopbackPorts.Next()), "-k", "acl", "--acl", _file], new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.StartsWith($"shadowsocks: --acl: cannot read {_file}: no such file; give the path of an ACL file", error.ToString());
        Assert.DoesNotContain("Could not find", error.ToString(), StringComparison.Ordinal); // not .NET's own message
    }

    [Fact]
    public async Task ADirectory_IsOneLine_SayingSo()
    {
        var error = new StringWriter();
        var code = await Program.RunAsync(["server", "-p", Port(LoopbackPorts.Next()), "-k", "acl", "--acl", Path.GetTempPath()], new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Contains(": is a directory; give the ACL file in it", error.ToString(), StringComparison.Ordinal);
    }
}
