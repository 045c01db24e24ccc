using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>Sends a random payload on a connected socket and checks the echo by SHA-256.</summary>
internal static class Transfer
{
    /// <summary>
    /// <paramref name="connections"/> SOCKS5 CONNECTs through <paramref name="proxy"/> to the echo server on loopback
    /// port <paramref name="echoPort"/>, one after another, each echoing <paramref name="bytes"/> (see <see cref="EchoRoundTripAsync"/>).
    /// </summary>
    public static async Task EchoThroughSocks5Async(
        IPEndPoint proxy, int echoPort, int connections, int bytes, CancellationToken cancellationToken, bool halfClose = true)
    {
        for (var i = 0; i < connections; i++)
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(proxy, "127.0.0.1", echoPort, cancellationToken);
            using var _ = socket;
            Assert.Equal(0, reply);
            await EchoRoundTripAsync(socket, bytes, cancellationToken, halfClose);
        }
    }

    /// <summary>
    /// <paramref name="connections"/> SOCKS5 CONNECTs through <paramref name="proxy"/> at once, the i-th to
    /// <paramref name="host"/>(i) port <paramref name="echoPort"/>, each answered with success and echoing
    /// <paramref name="bytes"/>: one task each.
    /// </summary>
    public static List<Task> EchoAtOnceThroughSocks5(
        IPEndPoint proxy, Func<int, string> host, int echoPort, int connections, int bytes, CancellationToken cancellationToken) =>
        [.. Enumerable.Range(0, connections).Select(async i =>
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(proxy, host(i), echoPort, cancellationToken);
            using (socket)
            {
                Assert.Equal(0, reply);
                await EchoRoundTripAsync(socket, bytes, cancellationToken);
            }
        })];

    /// <summary>
    /// With <paramref name="halfClose"/> the client shuts down sending after the payload and reads to the end (the
    /// FIN must cross the relay and come back). Without it the client reads exactly the payload's length: that is
    /// how to talk to shadowsocks-libev, which closes both directions when one ends (it has no half-close).
    /// </summary>
    public static async Task EchoRoundTripAsync(Socket socket, int bytes, CancellationToken cancellationToken, bool halfClose = true)
    {
        var payload = RandomNumberGenerator.GetBytes(bytes);
        var send = Task.Run(async () =>
        {
            for (var offset = 0; offset < payload.Length;)
            {
                var size = Math.Min(payload.Length - offset, 256 * 1024);
                offset += await socket.SendAsync(payload.AsMemory(offset, size), SocketFlags.None, cancellationToken);
            }

            if (halfClose)
            {
                socket.Shutdown(SocketShutdown.Send);
            }
        }, cancellationToken);
        byte[] echoed;
        if (halfClose)
        {
            echoed = await Socks5TestClient.ReadToEndAsync(socket, cancellationToken);
        }
        else
        {
            echoed = new byte[bytes];
            Assert.True(await Socks5TestClient.TryReadExactlyAsync(socket, echoed, cancellationToken), "the relay closed before the whole echo came back");
        }

        await send;
        Assert.Equal(payload.Length, echoed.Length);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(payload)), Convert.ToHexString(SHA256.HashData(echoed)));
    }
}
