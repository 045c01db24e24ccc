using System.Net;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Stages.Socks5Trim;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Socks5Trim;

/// <summary>
/// The local's SOCKS5 login (RFC 1929, <c>--socks5-auth</c>) on real loopback sockets, byte for byte: method 2 is chosen
/// when offered and required; a right login relays, a wrong or malformed one gets STATUS 1 and the close; without
/// users the local answers as before.
/// </summary>
public sealed class Socks5LoginTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    private static readonly Socks5Users s_users = Users("alice:wonder land\nbob:b:o:b\n");

    [Theory]
    [InlineData("alice", "wonder land")]
    [InlineData("bob", "b:o:b")]
    public async Task RightLogin_RelaysBytesEndToEnd(string user, string password)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with { Socks5Users = s_users });

        var (client, reply) = await Socks5TestClient.ConnectAsync(
            chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token, login: (user, password));
        using var _ = client;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(client, 64 * 1024, cancel.Token);
    }

    [Theory]
    [InlineData("alice", "wonder lan")] // a prefix of the password
    [InlineData("alice", "wonder land ")]
    [InlineData("bob", "wonder land")] // another user's
    [InlineData("carol", "wonder land")] // no such user
    [InlineData("ALICE", "wonder land")] // names are matched exactly
    public async Task WrongLogin_GetsStatus1_ThenTheClose(string user, string password)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with { Socks5Users = s_users });
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);

        Assert.Equal(1, await Socks5TestClient.LogInAsync(client, user, password, cancel.Token));
        Assert.Empty(await Socks5TestClient.ReadToEndAsync(client, cancel.Token));
    }

    [Theory]
    [InlineData(new byte[] { 5, 1, 0 })] // no authentication only: what a client without credentials sends
    [InlineData(new byte[] { 5, 3, 0, 1, 3 })] // GSSAPI and others, not 2
    public async Task NoUsernamePasswordOffered_Gets0xFF_ThenTheClose(byte[] greeting)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with { Socks5Users = s_users });
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync(greeting, SocketFlags.None, cancel.Token);

        Assert.Equal(new byte[] { 5, 0xFF }, await Socks5TestClient.ReadToEndAsync(client, cancel.Token));
    }

    [Fact]
    public async Task BothMethodsOffered_UsernamePasswordIsChosen()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with { Socks5Users = s_users });
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync(new byte[] { 5, 2, 0, 2 }, SocketFlags.None, cancel.Token);

        var selection = new byte[2];
        await Socks5TestClient.ReadExactlyAsync(client, selection, cancel.Token);
        Assert.Equal([5, 2], selection);
    }

    [Fact]
    public async Task WithoutUsers_AGreetingOfferingOnlyUsernamePassword_Gets0xFF_AsBefore()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var chain = RelayChain.Start("aes-256-gcm");
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync(new byte[] { 5, 1, 2 }, SocketFlags.None, cancel.Token);

        Assert.Equal(new byte[] { 5, 0xFF }, await Socks5TestClient.ReadToEndAsync(client, cancel.Token));
    }

    [Fact]
    public async Task WithoutUsers_BothMethodsOffered_NoAuthenticationIsChosen_AsBefore()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm");
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync((byte[])[5, 2, 0, 2, .. ConnectTo(destination.EndPoint)], SocketFlags.None, cancel.Token);

        var answer = new byte[2 + 10];
        await Socks5TestClient.ReadExactlyAsync(client, answer, cancel.Token);
        Assert.Equal([5, 0, 5, 0], answer[..4]);
        await Transfer.EchoRoundTripAsync(client, 4096, cancel.Token);
    }

    [Theory]
    [InlineData(new byte[] { 5, 5, (byte)'a', (byte)'l', (byte)'i', (byte)'c', (byte)'e', 1, (byte)'x' })] // VER 5, not 1
    [InlineData(new byte[] { 1, 0, 1, (byte)'x' })] // ULEN 0
    [InlineData(new byte[] { 1, 5, (byte)'a', (byte)'l', (byte)'i', (byte)'c', (byte)'e', 0 })] // PLEN 0
    public async Task MalformedLogin_GetsStatus1_ThenTheClose(byte[] login)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with { Socks5Users = s_users });
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync((byte[])[5, 1, 2, .. login], SocketFlags.None, cancel.Token);

        Assert.Equal(new byte[] { 5, 2, 1, 1 }, await Socks5TestClient.ReadToEndAsync(client, cancel.Token));
    }

    [Fact]
    public async Task TruncatedLogin_ThenTheClientsFin_GetsStatus1_ThenTheClose()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with { Socks5Users = s_users });
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync(new byte[] { 5, 1, 2, 1, 5, (byte)'a', (byte)'l' }, SocketFlags.None, cancel.Token);
        client.Shutdown(SocketShutdown.Send);

        Assert.Equal(new byte[] { 5, 2, 1, 1 }, await Socks5TestClient.ReadToEndAsync(client, cancel.Token));
    }

    [Fact]
    public async Task StalledLogin_IsClosedAtTheHandshakeTimeout()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var timeout = TimeSpan.FromSeconds(2);
        await using var chain = RelayChain.Start("aes-256-gcm", tune: o => o with { Socks5Users = s_users, HandshakeTimeout = timeout });
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await client.SendAsync(new byte[] { 5, 1, 2, 1, 5, (byte)'a', (byte)'l' }, SocketFlags.None, cancel.Token);

        Assert.Equal(new byte[] { 5, 2 }, await Socks5TestClient.ReadToEndAsync(client, cancel.Token));
        Assert.True(clock.Elapsed >= timeout - TimeSpan.FromMilliseconds(500), $"closed after {clock.Elapsed}, before the handshake timeout");
    }

    [Fact]
    public async Task GreetingLoginRequestAndData_SentTogether_AllAnswered()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with { Socks5Users = s_users });
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync((byte[])[5, 1, 2, .. Login("alice", "wonder land"), .. ConnectTo(destination.EndPoint), .. "ping"u8], SocketFlags.None, cancel.Token);

        var answer = new byte[2 + 2 + 10 + 4];
        await Socks5TestClient.ReadExactlyAsync(client, answer, cancel.Token);
        Assert.Equal([5, 2, 1, 0, 5, 0], answer[..6]);
        Assert.Equal("ping"u8.ToArray(), answer[14..]);
    }

    [Fact]
    public async Task LoginInPieces_IsPutTogetherAcrossTheWaits()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with { Socks5Users = s_users });
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        byte[] handshake = [5, 1, 2, .. Login("alice", "wonder land"), .. ConnectTo(destination.EndPoint)];
        for (var sent = 0; sent < handshake.Length; sent += 3)
        {
            await client.SendAsync(handshake.AsMemory(sent, Math.Min(3, handshake.Length - sent)), SocketFlags.None, cancel.Token);
            await Task.Delay(20, cancel.Token); // lets the local read this piece alone (not an assertion: any split works)
        }

        var answer = new byte[2 + 2];
        await Socks5TestClient.ReadExactlyAsync(client, answer, cancel.Token);
        Assert.Equal([5, 2, 1, 0], answer);
        Assert.Equal(0, await Socks5TestClient.ReadReplyAsync(client, cancel.Token));
        await Transfer.EchoRoundTripAsync(client, 4096, cancel.Token);
    }

    [Fact]
    public async Task EndConnectionsOf_EndsTheConnectionsThatUserLoggedInWith_AndNoOthers()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with { Socks5Users = Users("alice:a\nbob:b\n") });
        var (alices, aliceReply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token, login: ("alice", "a"));
        using var _ = alices;
        var (bobs, bobReply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token, login: ("bob", "b"));
        using var __ = bobs;
        Assert.Equal((0, 0), (aliceReply, bobReply));
        await Transfer.EchoRoundTripAsync(alices, 1024, cancel.Token, halfClose: false); // open, relaying

        Assert.Equal(1, chain.Local.EndConnectionsOf(new HashSet<string> { "alice" }));
        Assert.Empty(await Socks5TestClient.ReadUntilClosedAsync(alices, cancel.Token));
        await Transfer.EchoRoundTripAsync(bobs, 1024, cancel.Token);
    }

    [Fact]
    public async Task UdpAssociate_ComesOnlyAfterALogin_AndAnotherAddresssDatagramsAreDropped()
    {
        // Datagrams are taken only from an address that holds an association, and an association is made only for a
        // control connection that has logged in: one refused at login holds none, and neither does 127.0.0.2 here.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var options = RelayChain.Options("aes-256-gcm", "udp-login", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = UdpRelayChain.StartServer(options);
        var (udp, tcp) = UdpRelayChain.StartLocal(options with { Socks5Users = s_users }, server.LocalEndPoint);
        await using var _ = udp;
        await using var __ = tcp;

        using (var refused = await ConnectAsync(tcp.LocalEndPoint, cancel.Token))
        {
            Assert.Equal(1, await Socks5TestClient.LogInAsync(refused, "alice", "wrong", cancel.Token));
            Assert.Empty(await Socks5TestClient.ReadUntilClosedAsync(refused, cancel.Token)); // closed before any request
        }

        using var alice = await Socks5UdpTestClient.AssociateAsync(tcp.LocalEndPoint, cancel.Token, login: ("alice", "wonder land"));
        using var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        stranger.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        await stranger.SendToAsync(Socks5UdpTestClient.Request("127.0.0.1", echo.EndPoint.Port, "stranger"u8), SocketFlags.None, alice.Relay, cancel.Token);

        await alice.SendAsync("127.0.0.1", echo.EndPoint.Port, "alice"u8, cancel.Token); // after the stranger's, on the same socket
        Assert.Equal("alice"u8.ToArray(), await alice.ReceiveAsync(cancel.Token));
        Assert.Equal(1, echo.Received);
    }

    [Theory]
    [InlineData("eve", "eve")]
    [InlineData("eve\u202Eevil", "eve?evil")] // a right-to-left override would reorder the rest of the log line
    [InlineData("eve\u2028INFO forged", "eve?INFO forged")] // a line separator would start a forged line in some viewers
    [InlineData("a\u200Bb\u2029c", "a?b?c")] // zero-width space, paragraph separator
    [InlineData("eve\r\n\u0085x", "eve???x")] // C0 and C1 controls, as before
    [InlineData("ünïcødé 名前", "ünïcødé 名前")] // letters of any script show as they are
    public void AUserNameInALogLine_ShowsOnlyCharactersThatShowAsThemselves(string name, string shown) =>
        Assert.Equal(shown, Socks5HandshakeStage.Printable(Encoding.UTF8.GetBytes(name)));

    [Fact]
    public void ALongUserNameInALogLine_IsCut() =>
        Assert.Equal($"{new string('x', 64)}...", Socks5HandshakeStage.Printable(Encoding.UTF8.GetBytes(new string('x', 255))));

    private static Socks5Users Users(string text)
    {
        Assert.True(Socks5Users.TryParse(text, out var users, out var error), error);
        return users;
    }

    private static byte[] Login(string user, string password)
    {
        var name = Encoding.UTF8.GetBytes(user);
        var secret = Encoding.UTF8.GetBytes(password);
        return [1, (byte)name.Length, .. name, (byte)secret.Length, .. secret];
    }

    /// <summary>A CONNECT request to an IPv4 endpoint.</summary>
    private static byte[] ConnectTo(IPEndPoint destination) =>
        [5, 1, 0, 1, .. destination.Address.GetAddressBytes(), (byte)(destination.Port >> 8), (byte)destination.Port];

    private static async Task<Socket> ConnectAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint, cancellationToken);
        return socket;
    }
}
