using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Hosts.Demo;

/// <summary>The demo's start-up check: a SOCKS5 CONNECT through the local, a payload echoed back, checksums compared.</summary>
internal static class SelfCheck
{
    public static async Task<(bool Ok, double MegabytesPerSecond)> RunAsync(IPEndPoint socks, IPEndPoint destination, int bytes, CancellationToken cancellationToken)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(socks, cancellationToken).ConfigureAwait(false);
        var request = new byte[] { 5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, (byte)(destination.Port >> 8), (byte)destination.Port };
        await client.SendAsync(request, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        var reply = new byte[12];
        await ReadExactlyAsync(client, reply, cancellationToken).ConfigureAwait(false);
        if (reply[0] != 5 || reply[1] != 0 || reply[3] != 0)
        {
            return (false, 0);
        }

        var payload = RandomNumberGenerator.GetBytes(bytes);
        var stopwatch = Stopwatch.StartNew();
        var send = Task.Run(async () =>
        {
            await client.SendAsync(payload, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Send);
        }, cancellationToken);
        var echoed = new byte[bytes];
        await ReadExactlyAsync(client, echoed, cancellationToken).ConfigureAwait(false);
        await send.ConfigureAwait(false);
        stopwatch.Stop();
        var ok = SHA256.HashData(echoed).AsSpan().SequenceEqual(SHA256.HashData(payload));
        return (ok, 2.0 * bytes / (1024 * 1024) / stopwatch.Elapsed.TotalSeconds);
    }

    private static async Task ReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            var received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (received == 0)
            {
                throw new IOException("the connection closed early");
            }

            buffer = buffer[received..];
        }
    }
}
