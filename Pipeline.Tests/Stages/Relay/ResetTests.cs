using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

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
