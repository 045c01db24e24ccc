using System.Net.Sockets;
using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>Sends a random payload on a connected socket, half-closes, and checks the echo by SHA-256.</summary>
internal static class Transfer
{
    public static async Task EchoRoundTripAsync(Socket socket, int bytes, CancellationToken cancellationToken)
    {
        var payload = RandomNumberGenerator.GetBytes(bytes);
        var send = Task.Run(async () =>
        {
            for (var offset = 0; offset < payload.Length;)
            {
                var size = Math.Min(payload.Length - offset, 256 * 1024);
                offset += await socket.SendAsync(payload.AsMemory(offset, size), SocketFlags.None, cancellationToken);
            }

            socket.Shutdown(SocketShutdown.Send);
        }, cancellationToken);
        var echoed = await Socks5TestClient.ReadToEndAsync(socket, cancellationToken);
        await send;
        Assert.Equal(payload.Length, echoed.Length);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(payload)), Convert.ToHexString(SHA256.HashData(echoed)));
    }
}
