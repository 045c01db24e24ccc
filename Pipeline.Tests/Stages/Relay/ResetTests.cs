using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>An abrupt reset from a client or a destination ends that connection only.</summary>
public sealed class ResetTests
{
    [Fact]
    public async Task ClientReset_MidTransfer_OtherConnectionUnaffected()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm");
        var (steady, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var _ = steady;
        Assert.Equal(0, reply);
        var steadyTransfer = Transfer.EchoRoundTripAsync(steady, 8 << 20, cancel.Token);

        for (var i = 0; i < 20; i++)
        {
            var (victim, code) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            Assert.Equal(0, code);
            await victim.SendAsync(RandomNumberGenerator.GetBytes(100_000), SocketFlags.None, cancel.Token);
            victim.LingerState = new LingerOption(true, 0); // close with RST
            victim.Dispose();
        }

        await steadyTransfer;
        await WaitUntilAsync(() => chain.Local.ActiveSessions <= 1 && chain.Server.ActiveSessions <= 1, cancel.Token);
        Assert.True(chain.Local.ActiveSessions <= 1, $"local still holds {chain.Local.ActiveSessions} sessions");
    }

    [Fact]
    public async Task DestinationReset_EndsThatConnection_OtherUnaffected()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var echo = new EchoDestination();
        using var resetter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        resetter.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        resetter.Listen();
        await using var chain = RelayChain.Start("chacha20-ietf-poly1305");
        var (steady, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", echo.EndPoint.Port, cancel.Token);
        using var _ = steady;
        Assert.Equal(0, reply);
        var steadyTransfer = Transfer.EchoRoundTripAsync(steady, 8 << 20, cancel.Token);

        var (victim, code) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", ((IPEndPoint)resetter.LocalEndPoint!).Port, cancel.Token);
        using var __ = victim;
        Assert.Equal(0, code);
        await victim.SendAsync(RandomNumberGenerator.GetBytes(1000), SocketFlags.None, cancel.Token);
        using (var accepted = await resetter.AcceptAsync(cancel.Token))
        {
            accepted.LingerState = new LingerOption(true, 0);
        }

        // The victim's connection ends (closed or reset), promptly.
        var end = EndOfStreamAsync(victim, cancel.Token);
        Assert.Same(end, await Task.WhenAny(end, Task.Delay(10_000, cancel.Token)));
        await steadyTransfer;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AResetAfterAHalfClose_EndsTheConnection_BeforeTheIdleTimeout(bool clientResets)
    {
        // One side sends, half-closes, then resets; the other side is idle, waiting. The relay reads the half-closed
        // socket no more, so the reset went unseen until the idle timeout (30 s in RelayChain) closed the connection.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var destination = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        destination.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        destination.Listen();
        await using var chain = RelayChain.Start("aes-256-gcm");
        var (client, code) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", ((IPEndPoint)destination.LocalEndPoint!).Port, cancel.Token);
        using var _ = client;
        Assert.Equal(0, code);
        using var accepted = await destination.AcceptAsync(cancel.Token);
        var (resetting, waiting) = clientResets ? (client, accepted) : (accepted, client);

        await resetting.SendAsync("last words"u8.ToArray(), SocketFlags.None, cancel.Token);
        resetting.Shutdown(SocketShutdown.Send);
        var received = new byte[64];
        var got = 0;
        while (true)
        {
            var n = await waiting.ReceiveAsync(received.AsMemory(got), SocketFlags.None, cancel.Token);
            if (n == 0)
            {
                break; // the half-close came through, after the data
            }

            got += n;
        }

        Assert.Equal("last words"u8.ToArray(), received[..got]);
        resetting.LingerState = new LingerOption(true, 0);
        resetting.Close(); // RST

        // The waiting side's connection is torn down (its peer's sockets closed): a send fails, or a receive ends.
        await WaitUntilAsync(() => chain.Local.ActiveSessions == 0 && chain.Server.ActiveSessions == 0, cancel.Token);
        Assert.True(chain.Local.ActiveSessions == 0 && chain.Server.ActiveSessions == 0, $"sessions open: local {chain.Local.ActiveSessions}, server {chain.Server.ActiveSessions}");
    }

    [Fact]
    public async Task Resets_WhileChunksAreInFlight_GiveEveryChunkBack_AndTheRelayMovesOn()
    {
        // A one-chunk budget shared by local and server: every pump runs one chunk at a time. Each victim's peer stops
        // reading for a while, so the socket buffers fill, a forward block waits to send and the pumps behind it wait
        // for their chains; then a reset tears the connection down with chunks in flight. Half the victims are reset by
        // their destination, half by their client.
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var budget = new ReadBudget(ReadBudget.Smallest);
        await using var echo = new EchoDestination();
        using var resetter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        resetter.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        resetter.Listen(128);
        await using var chain = RelayChain.Start("aes-256-gcm", tune: o => o with { ReadBudget = budget });
        const int Victims = 16;
        const int Payload = 16 << 20; // more than the kernel's socket buffers along the way hold (up to 10 MiB a hop on loopback)
        var resetting = ResetAfterAStallAsync(resetter, Victims / 2, cancel.Token);

        await Task.WhenAll(Enumerable.Range(0, Victims).Select(async i =>
        {
            var toResetter = i % 2 == 0;
            var port = toResetter ? ((IPEndPoint)resetter.LocalEndPoint!).Port : echo.EndPoint.Port;
            var (victim, code) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", port, cancel.Token);
            using var _ = victim;
            Assert.Equal(0, code);
            var sending = victim.SendAsync(RandomNumberGenerator.GetBytes(Payload), SocketFlags.None, cancel.Token).AsTask();
            if (toResetter)
            {
                // Ends when the destination's reset has come back through the relay.
                await sending.ContinueWith(static _ => { }, TaskScheduler.Default);
                return;
            }

            // Read a random part of the echo, stop reading until everything behind it is full, then reset.
            await Socks5TestClient.ReadExactlyAsync(victim, new byte[Random.Shared.Next(1, 512 * 1024)], cancel.Token);
            await Task.Delay(300, cancel.Token);
            victim.LingerState = new LingerOption(true, 0);
            victim.Dispose();
            await sending.ContinueWith(static _ => { }, TaskScheduler.Default); // ended by the reset
        }));

        await resetting;
        await WaitUntilAsync(() => chain.Local.ActiveSessions == 0 && chain.Server.ActiveSessions == 0 && budget.InFlight == 0 && budget.Busy == 0, cancel.Token);
        Assert.Equal(0, chain.Local.ActiveSessions + chain.Server.ActiveSessions);
        Assert.Equal(0, budget.InFlight); // a chunk the teardown failed to give back would shrink every later connection's share
        Assert.Equal(0, budget.Busy);

        // And the relay moves on: a whole echo afterwards, every byte checked.
        await Transfer.EchoThroughSocks5Async(chain.Local.LocalEndPoint, echo.EndPoint.Port, 1, 4 << 20, cancel.Token);
        Assert.Equal(0, budget.InFlight);
    }

    /// <summary>Accepts <paramref name="count"/> connections; each reads a random part of what comes, stops reading until the buffers behind it are full, then resets.</summary>
    private static Task ResetAfterAStallAsync(Socket listener, int count, CancellationToken cancellationToken) =>
        Task.WhenAll(Enumerable.Range(0, count).Select(async _ =>
        {
            using var accepted = await listener.AcceptAsync(cancellationToken);
            await Socks5TestClient.ReadExactlyAsync(accepted, new byte[Random.Shared.Next(0, 768 * 1024)], cancellationToken);
            await Task.Delay(300, cancellationToken);
            accepted.LingerState = new LingerOption(true, 0);
        }));

    private static async Task<bool> EndOfStreamAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // Reset: ended too.
        }

        return true;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, cancellationToken);
        }
    }
}
