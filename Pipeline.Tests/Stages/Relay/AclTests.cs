using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>The server's ACL (<c>--acl</c>): clients it refuses are closed at once; destinations on its outbound block list are never reached.</summary>
public sealed class AclTests
{
    private static readonly IPAddress s_second = IPAddress.Parse("127.0.0.2");

    [Fact]
    public async Task RejectAll_ServesTheWhiteList_ClosesOthersAtOnce()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var destination = new EchoDestination();
        var options = Options("[reject_all]\n[white_list]\n127.0.0.2\n");
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        using var admitted = await RequestAsync(server.LocalEndPoint, s_second, options, ShadowsocksAddress.FromEndPoint(destination.EndPoint), cancel.Token);
        Assert.True(await admitted.ReceiveAsync(new byte[64], SocketFlags.None, cancel.Token) > 0); // the echo, encrypted

        using var refused = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        refused.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await refused.ConnectAsync(server.LocalEndPoint, cancel.Token);
        Assert.Equal(0, await ReceiveOrResetAsync(refused, cancel.Token)); // closed before a byte was sent
        Assert.Equal(1, destination.Accepted);
    }

    [Fact]
    public async Task OutboundBlockList_ByAddress_AndByNameBeforeAnyLookup()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var destination = new EchoDestination();
        using var blocked = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        blocked.Bind(new IPEndPoint(s_second, 0));
        blocked.Listen(4);
        var options = Options("[outbound_block_list]\n127.0.0.2/32\n(^|\\.)blocked\\.test$\n");
        var resolver = new CountingResolver();
        await using var server = new ServerTcpRelay(options, resolver, ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        using (var toBlocked = await RequestAsync(server.LocalEndPoint, IPAddress.Loopback, options, ShadowsocksAddress.FromEndPoint((IPEndPoint)blocked.LocalEndPoint!), cancel.Token))
        {
            Assert.Equal(0, await ReceiveOrResetAsync(toBlocked, cancel.Token));
        }

        using (var byName = await RequestAsync(server.LocalEndPoint, IPAddress.Loopback, options, ShadowsocksAddress.FromHost("www.Blocked.test", 80), cancel.Token))
        {
            Assert.Equal(0, await ReceiveOrResetAsync(byName, cancel.Token));
        }

        Assert.Equal(0, resolver.Lookups);
        Assert.False(blocked.Poll(0, SelectMode.SelectRead), "a blocked destination was connected to");

        using var allowed = await RequestAsync(server.LocalEndPoint, IPAddress.Loopback, options, ShadowsocksAddress.FromEndPoint(destination.EndPoint), cancel.Token);
        Assert.True(await allowed.ReceiveAsync(new byte[64], SocketFlags.None, cancel.Token) > 0);
    }

    [Fact]
    public async Task OutboundBlockList_ByName_HoldsForTheNameWithATrailingDot()
    {
        // "LOCALHOST." is the same name as "localhost" to the resolver, but the block list's rules saw another string
        // ("^localhost$" does not match it): the name went past the check to be looked up and connected to, held back
        // only if an address rule or forbidden_ip named what it resolved to.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var destination = new EchoDestination();
        var options = Options("[outbound_block_list]\n^localhost$\n");
        var resolver = new CountingResolver();
        await using var server = new ServerTcpRelay(options, resolver, ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        foreach (var name in new[] { "localhost", "LOCALHOST.", "localhost.." })
        {
            using var request = await RequestAsync(server.LocalEndPoint, IPAddress.Loopback, options, ShadowsocksAddress.FromHost(name, destination.EndPoint.Port), cancel.Token);
            Assert.Equal(0, await ReceiveOrResetAsync(request, cancel.Token));
        }

        Assert.Equal(0, resolver.Lookups);
    }

    private static RelayOptions Options(string acl)
    {
        Assert.True(AccessControlList.TryParse(acl, out var parsed, out var error), error);
        return RelayChain.Options("aes-256-gcm", "acl", new IPEndPoint(IPAddress.Loopback, 0)) with { Acl = parsed };
    }

    /// <summary>A Shadowsocks request (address header and 100 bytes) from <paramref name="source"/>.</summary>
    private static async Task<Socket> RequestAsync(IPEndPoint server, IPAddress source, RelayOptions options, ShadowsocksAddress target, CancellationToken cancellationToken)
    {
        var payload = RandomNumberGenerator.GetBytes(100);
        var plain = new byte[AddressHeader.GetSize(target) + payload.Length];
        payload.CopyTo(plain, AddressHeader.Write(target, plain));
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        var request = new byte[encryptor.MaxOutputSize(plain.Length)];
        request = request[..encryptor.Encrypt(plain, request)];

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(source, 0));
        await socket.ConnectAsync(server, cancellationToken);
        await socket.SendAsync(request, SocketFlags.None, cancellationToken);
        return socket;
    }

    /// <summary>What a receive gets: 0 for a close, and also for a reset (a close with unread data behind it).</summary>
    private static async Task<int> ReceiveOrResetAsync(Socket socket, CancellationToken cancellationToken)
    {
        try
        {
            return await socket.ReceiveAsync(new byte[64], SocketFlags.None, cancellationToken);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return 0;
        }
    }
}
