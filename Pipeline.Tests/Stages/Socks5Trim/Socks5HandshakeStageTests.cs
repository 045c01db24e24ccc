using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Stages.Socks5Trim;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Socks5Trim;

/// <summary>
/// The local's SOCKS5 handshake on a real socket, byte for byte: a client that sends its request right behind the
/// greeting gets the method selection and the request's reply together; a client that waits for the selection
/// gets it at once. Bad requests get their reply code and a closed connection.
/// </summary>
public sealed class Socks5HandshakeStageTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    private static readonly byte[] s_greeting = [5, 1, 0];

    [Fact]
    public async Task PipelinedRequest_TheMethodSelectionWaitsForTheReply()
    {
        using var cancel = new CancellationTokenSource(s_timeout);

        // A server whose accept queue is full: the local's connect to it hangs until the connect timeout.
        using var full = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        full.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        full.Listen(0);
        using var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await filler.ConnectAsync(full.LocalEndPoint!, cancel.Token);

        await using var local = StartLocal((IPEndPoint)full.LocalEndPoint!, TimeSpan.FromSeconds(2));
        using var client = await ConnectAsync(local.LocalEndPoint, cancel.Token);
        await client.SendAsync(Pipelined([5, 1, 0, 1, 127, 0, 0, 1, 0, 80]), SocketFlags.None, cancel.Token);

        Assert.False(client.Poll(TimeSpan.FromMilliseconds(500), SelectMode.SelectRead), "the method selection went out before the request's reply");
        var answer = await Socks5TestClient.ReadToEndAsync(client, cancel.Token);
        Assert.Equal(12, answer.Length);
        Assert.Equal([5, 0], answer[..2]);
        Assert.Equal(5, answer[2]);
        Assert.Equal((byte)Socks5Reply.HostUnreachable, answer[3]);
    }

    [Theory]
    [InlineData(new byte[] { 5, 2, 0, 1, 127, 0, 0, 1, 0, 80 }, (byte)Socks5Reply.CommandNotSupported)] // BIND
    [InlineData(new byte[] { 5, 3, 0, 1, 127, 0, 0, 1, 0, 80 }, (byte)Socks5Reply.CommandNotSupported)] // UDP ASSOCIATE, UDP off
    [InlineData(new byte[] { 5, 9, 0, 1, 127, 0, 0, 1, 0, 80 }, (byte)Socks5Reply.CommandNotSupported)] // no such command
    [InlineData(new byte[] { 5, 1, 0, 9, 127, 0, 0, 1, 0, 80 }, (byte)Socks5Reply.AddressTypeNotSupported)]
    [InlineData(new byte[] { 4, 1, 0, 1, 127, 0, 0, 1, 0, 80 }, (byte)Socks5Reply.GeneralFailure)] // not version 5
    [InlineData(new byte[] { 5, 1, 0, 3, 0, 0, 80 }, (byte)Socks5Reply.GeneralFailure)] // an empty domain name
    [InlineData(new byte[] { 5, 1, 0, 3, 3, (byte)'a', 0, (byte)'b', 0, 80 }, (byte)Socks5Reply.GeneralFailure)] // a NUL in the name
    [InlineData(new byte[] { 5, 1, 0, 3, 4, 0xC3, 0xA9, (byte)'.', (byte)'x', 0, 80 }, (byte)Socks5Reply.GeneralFailure)] // UTF-8, not punycode
    public async Task PipelinedBadRequest_GetsTheSelectionAndItsReplyCode_ThenTheClose(byte[] request, byte expected)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var local = StartLocal(new IPEndPoint(IPAddress.Loopback, LocalServerRelayTests.FreeClosedPort()), TimeSpan.FromSeconds(5));
        using var client = await ConnectAsync(local.LocalEndPoint, cancel.Token);
        await client.SendAsync(Pipelined(request), SocketFlags.None, cancel.Token);

        var answer = await Socks5TestClient.ReadToEndAsync(client, cancel.Token);
        Assert.Equal(new byte[] { 5, 0, 5, expected, 0, 1, 0, 0, 0, 0, 0, 0 }, answer);
    }

    [Theory]
    [InlineData(new byte[] { 5, 0 })] // NMETHODS 0
    [InlineData(new byte[] { 5, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 })] // NMETHODS 0, a request behind it
    [InlineData(new byte[] { (byte)'G', (byte)'E', (byte)'T', (byte)' ', (byte)'/', (byte)' ', (byte)'H' })] // HTTP to the SOCKS5 port
    public async Task MalformedGreeting_Gets0xFF_ThenTheClose(byte[] greeting)
    {
        // Nothing after the greeting is read as a request: the answer is "no acceptable methods" and the close.
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var local = StartLocal(new IPEndPoint(IPAddress.Loopback, LocalServerRelayTests.FreeClosedPort()), TimeSpan.FromSeconds(5));
        using var client = await ConnectAsync(local.LocalEndPoint, cancel.Token);
        await client.SendAsync(greeting, SocketFlags.None, cancel.Token);

        Assert.Equal(new byte[] { 5, 0xFF }, await Socks5TestClient.ReadToEndAsync(client, cancel.Token));
    }

    [Theory]
    [InlineData(new byte[] { 4, 1, 0, 80, 127, 0, 0, 1, (byte)'u', 0 })] // SOCKS4 CONNECT
    [InlineData(new byte[] { 4, 1, 0, 80, 0, 0, 0, 1, 0, (byte)'h', 0 })] // SOCKS4a CONNECT to a name
    public async Task Socks4Request_GetsASocks4Rejection_ThenTheClose(byte[] request)
    {
        // A SOCKS4 client reads an 8-byte reply: SOCKS5's "no acceptable methods" (2 bytes) reads as a proxy that
        // closed mid-reply (curl: "connection to proxy closed"), a rejection as what it is.
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var local = StartLocal(new IPEndPoint(IPAddress.Loopback, LocalServerRelayTests.FreeClosedPort()), TimeSpan.FromSeconds(5));
        using var client = await ConnectAsync(local.LocalEndPoint, cancel.Token);
        await client.SendAsync(request, SocketFlags.None, cancel.Token);

        var answer = await Socks5TestClient.ReadToEndAsync(client, cancel.Token);
        Assert.Equal(new byte[] { 0, 91, 0, 0, 0, 0, 0, 0 }, answer);
    }

    [Fact]
    public async Task PipelinedRequest_ServerRefuses_TheSelectionComesWithTheFailure()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var local = StartLocal(new IPEndPoint(IPAddress.Loopback, LocalServerRelayTests.FreeClosedPort()), TimeSpan.FromSeconds(5));
        using var client = await ConnectAsync(local.LocalEndPoint, cancel.Token);
        await client.SendAsync(Pipelined([5, 1, 0, 1, 127, 0, 0, 1, 0, 80]), SocketFlags.None, cancel.Token);

        var answer = await Socks5TestClient.ReadToEndAsync(client, cancel.Token);
        Assert.Equal(new byte[] { 5, 0, 5, (byte)Socks5Reply.ConnectionRefused, 0, 1, 0, 0, 0, 0, 0, 0 }, answer);
    }

    [Fact]
    public async Task HalfARequestBehindTheGreeting_TheSelectionGoesAtOnce_AndTheRestCompletesIt()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm");
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        var request = ConnectTo(destination.EndPoint);
        await client.SendAsync(Pipelined(request[..4]), SocketFlags.None, cancel.Token);

        var selection = new byte[2];
        await Socks5TestClient.ReadExactlyAsync(client, selection, cancel.Token); // the client may wait for it before sending more
        Assert.Equal([5, 0], selection);
        await client.SendAsync(request[4..], SocketFlags.None, cancel.Token);
        Assert.Equal(0, await Socks5TestClient.ReadReplyAsync(client, cancel.Token));
        await Transfer.EchoRoundTripAsync(client, 4096, cancel.Token);
    }

    [Fact]
    public async Task PipelinedRequestAndData_AllArriveAfterOneAnswer()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("chacha20-ietf-poly1305");
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        var request = ConnectTo(destination.EndPoint);
        await client.SendAsync(Pipelined([.. request, .. "ping"u8]), SocketFlags.None, cancel.Token);

        var answer = new byte[2 + 10 + 4];
        await Socks5TestClient.ReadExactlyAsync(client, answer, cancel.Token);
        Assert.Equal([5, 0, 5, 0], answer[..4]);
        Assert.Equal("ping"u8.ToArray(), answer[12..]);
    }

    [Fact]
    public async Task ConnectReply_ToAnIpv4ClientOfADualStackListener_NamesTheAddressAsIpv4()
    {
        // A local on [::] (-b ::) sees an IPv4 client's connection as IPv4-mapped IPv6: its CONNECT reply said
        // BND.ADDR ::ffff:127.0.0.1 (ATYP 4) to a client that connected to 127.0.0.1 (its UDP ASSOCIATE reply said 127.0.0.1).
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var server = new ServerTcpRelay(
            RelayChain.Options("aes-256-gcm", "x", new IPEndPoint(IPAddress.Loopback, 0)), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        await using var local = new LocalTcpRelay(
            RelayChain.Options("aes-256-gcm", "x", new IPEndPoint(IPAddress.IPv6Any, 0), server.LocalEndPoint), ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        using var client = await ConnectAsync(new IPEndPoint(IPAddress.Loopback, local.LocalEndPoint.Port), cancel.Token);
        await client.SendAsync(Pipelined(ConnectTo(destination.EndPoint)), SocketFlags.None, cancel.Token);

        var answer = new byte[2 + 10];
        await Socks5TestClient.ReadExactlyAsync(client, answer, cancel.Token);
        var port = local.LocalEndPoint.Port;
        Assert.Equal(new byte[] { 5, 0, 5, 0, 0, 1, 127, 0, 0, 1, (byte)(port >> 8), (byte)port }, answer);
        await Transfer.EchoRoundTripAsync(client, 4096, cancel.Token);
    }

    [Fact]
    public async Task PipelinedUdpAssociate_TheSelectionComesWithTheRelaysAddress()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var chain = UdpRelayChain.Start("aes-256-gcm");
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync(Pipelined([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]), SocketFlags.None, cancel.Token);

        var answer = new byte[2 + 10];
        await Socks5TestClient.ReadExactlyAsync(client, answer, cancel.Token);
        var udpPort = chain.LocalUdp.LocalEndPoint.Port;
        Assert.Equal(new byte[] { 5, 0, 5, 0, 0, 1, 127, 0, 0, 1, (byte)(udpPort >> 8), (byte)udpPort }, answer);
    }

    [Fact]
    public async Task SilentAndSlowClients_HoldNoHandshakeSlot_AndTheNextClientIsServed()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", tune: static o => o with
        {
            HandshakeTimeout = TimeSpan.FromMinutes(10), // far beyond the test's deadline: a slot held until then fails it
            Pipeline = PipelineOptions.Default with { Handshake = new StageOptions(2, 4) }, // two handshakes at once, four held
        });

        // Eight clients that send a greeting's first byte and stop, and four that send a greeting and no request:
        // together three times what the handshake stage holds. (One that sends nothing at all waits in the kernel's
        // accept queue first, TCP_DEFER_ACCEPT, and then as these do.) Anyone on the local's LAN can open them.
        var idle = new List<Socket>();
        try
        {
            for (var i = 0; i < 12; i++)
            {
                var socket = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
                idle.Add(socket);
                await socket.SendAsync(i < 8 ? new byte[] { 5 } : s_greeting, SocketFlags.None, cancel.Token);
            }

            for (var i = 8; i < 12; i++)
            {
                var selection = new byte[2];
                await Socks5TestClient.ReadExactlyAsync(idle[i], selection, cancel.Token);
                Assert.Equal([5, 0], selection);
            }

            while (chain.Local.ActiveSessions < idle.Count)
            {
                await Task.Delay(20, cancel.Token);
            }

            // A client that says what it wants is served all the same.
            var (client, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            using var _ = client;
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(client, 4096, cancel.Token);
        }
        finally
        {
            idle.ForEach(static s => s.Dispose());
        }
    }

    [Fact]
    public async Task AGreetingInPieces_IsClosedAtTheHandshakeTimeout_FromTheAccept()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var timeout = TimeSpan.FromSeconds(3);
        await using var chain = RelayChain.Start("aes-256-gcm", tune: o => o with { HandshakeTimeout = timeout });
        using var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync(new byte[] { 5 }, SocketFlags.None, cancel.Token); // accepted now (TCP_DEFER_ACCEPT)
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Task.Delay(timeout * 2 / 3, cancel.Token);
        await client.SendAsync(new byte[] { 1 }, SocketFlags.None, cancel.Token); // still no method: more to wait for

        // Closed with nothing said, the timeout after the first byte: a deadline armed again at each piece would close
        // it the timeout after the second (5 s), and a client sending a byte now and then would hold on for minutes.
        Assert.Empty(await Socks5TestClient.ReadToEndAsync(client, cancel.Token));
        Assert.InRange(clock.Elapsed, timeout - TimeSpan.FromMilliseconds(500), timeout + TimeSpan.FromSeconds(1.5));
    }

    [Fact]
    public async Task AHandshakeInPieces_HasOneHandshakeSpan_AndOneWaitSpan()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var spans = new ConnectionSpans();
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm");
        var clientPort = 0;
        using (var client = await ConnectAsync(chain.Local.LocalEndPoint, cancel.Token))
        {
            clientPort = ((IPEndPoint)client.LocalEndPoint!).Port;
            byte[] handshake = Pipelined(ConnectTo(destination.EndPoint));
            for (var sent = 0; sent < handshake.Length; sent += 2)
            {
                await client.SendAsync(handshake.AsMemory(sent, Math.Min(2, handshake.Length - sent)), SocketFlags.None, cancel.Token);
                await Task.Delay(30, cancel.Token); // lets the local read this piece alone (not an assertion: any split works)
            }

            var answer = new byte[2 + 10];
            await Socks5TestClient.ReadExactlyAsync(client, answer, cancel.Token);
            Assert.Equal([5, 0, 5, 0], answer[..4]);
        }

        var children = await spans.ChildrenAsync("local connection", clientPort, TimeSpan.FromSeconds(30));
        Assert.NotNull(children);
        Assert.Equal(ActivityStatusCode.Unset, Assert.Single(children, static s => s.OperationName == Socks5HandshakeStage.Name).Status);
        Assert.Equal(ActivityStatusCode.Unset, Assert.Single(children, static s => s.OperationName == WaitForBytesStage.Name).Status);
    }

    private static byte[] Pipelined(byte[] request) => [.. s_greeting, .. request];

    /// <summary>A CONNECT request to an IPv4 endpoint.</summary>
    private static byte[] ConnectTo(IPEndPoint destination) =>
        [5, 1, 0, 1, .. destination.Address.GetAddressBytes(), (byte)(destination.Port >> 8), (byte)destination.Port];

    private static LocalTcpRelay StartLocal(IPEndPoint server, TimeSpan connectTimeout)
    {
        var options = RelayChain.Options("aes-256-gcm", "x", new IPEndPoint(IPAddress.Loopback, 0), server) with { ConnectTimeout = connectTimeout, ConnectRetries = 0 };
        var local = new LocalTcpRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        return local;
    }

    private static async Task<Socket> ConnectAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint, cancellationToken);
        return socket;
    }
}
