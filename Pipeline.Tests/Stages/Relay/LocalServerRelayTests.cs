using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>Our local and our server end to end on loopback, through real sockets.</summary>
public sealed class LocalServerRelayTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(120);

    public static TheoryData<string> AllMethods()
    {
        var data = new TheoryData<string>();
        foreach (var cipher in CipherCatalog.All)
        {
            data.Add(cipher.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public async Task Socks5Connect_EchoesPayloadIntact_EveryMethod(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start(method);
        var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, PayloadSize(method), cancel.Token);
    }

    [Fact]
    public async Task Socks5Connect_ByDomainName_ResolvesOnServer()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm");
        var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "localhost", destination.EndPoint.Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 1 << 20, cancel.Token);
    }

    [Fact]
    public async Task Tunnel_ForwardsToFixedDestination()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("chacha20-ietf-poly1305", tunnelTo: ShadowsocksAddress.FromEndPoint(destination.EndPoint));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(chain.Tunnel!.LocalEndPoint, cancel.Token);
        await Transfer.EchoRoundTripAsync(socket, 4 << 20, cancel.Token);
    }

    [Fact]
    public async Task ConcurrentConnections_200x1MiB_AllChecksumsRight()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(180));
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-128-gcm");
        var tasks = Enumerable.Range(0, 200).Select(async _ =>
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            using var __ = socket;
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 1 << 20, cancel.Token);
        });
        await Task.WhenAll(tasks);
        Assert.Equal(200, destination.Accepted);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // the local's add-header stage takes the end of stream within its first-data wait; the pump must still pass the FIN on
    public async Task HalfClose_ClientShutsDownSending_StillReceivesFullReply(bool sendsARequestFirst)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        await using var chain = RelayChain.Start("aes-256-gcm");

        var request = sendsARequestFirst ? "request-then-FIN"u8.ToArray() : [];
        var reply = Enumerable.Range(0, 3 << 20).Select(i => (byte)(i * 7)).ToArray();
        var server = Task.Run(async () =>
        {
            using var accepted = await listener.AcceptAsync(cancel.Token);
            // Read the whole request up to the client's FIN, only then answer: the FIN must have crossed the relay.
            var received = await Socks5TestClient.ReadToEndAsync(accepted, cancel.Token);
            await accepted.SendAsync(reply, SocketFlags.None, cancel.Token);
            accepted.Shutdown(SocketShutdown.Send);
            return received;
        });

        var (socket, code) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, code);
        if (sendsARequestFirst)
        {
            await socket.SendAsync(request, SocketFlags.None, cancel.Token);
        }

        socket.Shutdown(SocketShutdown.Send);
        var answer = await Socks5TestClient.ReadToEndAsync(socket, cancel.Token);
        Assert.Equal(request, await server);
        Assert.Equal(reply, answer);
    }

    [Fact]
    public async Task DestinationRefuses_ClientConnectionIsClosed()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var chain = RelayChain.Start("aes-256-gcm");
        var closedPort = FreeClosedPort();
        var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", closedPort, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply); // The local cannot know: only the server sees the refusal, and it closes.
        await socket.SendAsync("hello"u8.ToArray(), SocketFlags.None, cancel.Token);

        Assert.Empty(await Socks5TestClient.ReadUntilClosedAsync(socket, cancel.Token)); // a FIN or a reset: nothing relayed
    }

    [Fact]
    public async Task ServerUnreachable_LocalRepliesFailureAndCloses()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var options = RelayChain.Options("aes-256-gcm", "x", new IPEndPoint(IPAddress.Loopback, 0), new IPEndPoint(IPAddress.Loopback, FreeClosedPort()));
        await using var local = new Shadowsocks.Pipeline.Stages.Relay.LocalTcpRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", 80, cancel.Token);
        using var _ = socket;
        Assert.Equal((byte)Socks5Reply.ConnectionRefused, reply);
        Assert.Empty(await Socks5TestClient.ReadToEndAsync(socket, cancel.Token));
    }

    [Fact]
    public async Task WrongPassword_NothingReachesDestination()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", password: "right", localPassword: "wrong");
        var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await socket.SendAsync(new byte[4096], SocketFlags.None, cancel.Token);
        await Task.Delay(500, cancel.Token);
        Assert.Equal(0, destination.Accepted);
        Assert.Equal(0, destination.BytesReceived);
    }

    /// <summary>Bytes for the per-method round trip: bit-at-a-time CFB1 is slow by nature, so it moves less.</summary>
    private static int PayloadSize(string method) => method.EndsWith("-cfb1", StringComparison.Ordinal) ? 256 * 1024 : 8 << 20;

    internal static int FreeClosedPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
