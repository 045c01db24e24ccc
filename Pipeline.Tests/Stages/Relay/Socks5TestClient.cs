using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>A SOCKS5 client written from RFC 1928 in the test, independent of the codec under test.</summary>
internal static class Socks5TestClient
{
    /// <summary>
    /// Connects through <paramref name="proxy"/> to <paramref name="host"/>:<paramref name="port"/>; returns the socket
    /// and the reply code. <paramref name="receiveBuffer"/>: the socket's receive buffer, set before connecting (shrunk
    /// afterwards, a loopback connection stalls); 0 leaves the system's. <paramref name="asName"/>: an address is sent as
    /// a name (type 3, <c>10.1.2.3</c> spelt out) rather than as an address (type 1 or 4). <paramref name="login"/>: offers
    /// only username/password (method 2) and logs in with it (RFC 1929), the request after a STATUS 0.
    /// </summary>
    public static async Task<(Socket Socket, byte Reply)> ConnectAsync(
        IPEndPoint proxy, string host, int port, CancellationToken cancellationToken, int receiveBuffer = 0, bool asName = false, (string User, string Password)? login = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (receiveBuffer > 0)
            {
                socket.ReceiveBufferSize = receiveBuffer;
            }

            await socket.ConnectAsync(proxy, cancellationToken);
            if (login is { } credentials)
            {
                var status = await LogInAsync(socket, credentials.User, credentials.Password, cancellationToken);
                if (status != 0)
                {
                    throw new IOException($"proxy refused the login: status {status}");
                }
            }
            else
            {
                await socket.SendAsync(new byte[] { 5, 1, 0 }, SocketFlags.None, cancellationToken);
                var method = new byte[2];
                await ReadExactlyAsync(socket, method, cancellationToken);
                if (method[0] != 5 || method[1] != 0)
                {
                    throw new IOException($"proxy refused the no-auth method: {method[1]}");
                }
            }

            byte[] request;
            if (!asName && IPAddress.TryParse(host, out var ip))
            {
                var address = ip.GetAddressBytes();
                request = [5, 1, 0, (byte)(address.Length == 4 ? 1 : 4), .. address, (byte)(port >> 8), (byte)port];
            }
            else
            {
                var name = Encoding.ASCII.GetBytes(host);
                request = [5, 1, 0, 3, (byte)name.Length, .. name, (byte)(port >> 8), (byte)port];
            }

            await socket.SendAsync(request, SocketFlags.None, cancellationToken);
            var reply = await ReadReplyAsync(socket, cancellationToken);
            return (socket, reply);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Offers username/password (method 2) alone and, once the proxy chose it, logs in (RFC 1929:
    /// <c>1 | ULEN | UNAME | PLEN | PASSWD</c>); returns the reply's STATUS (0: logged in). Throws if the proxy chose
    /// another method or closed.
    /// </summary>
    public static async Task<byte> LogInAsync(Socket socket, string user, string password, CancellationToken cancellationToken)
    {
        await socket.SendAsync(new byte[] { 5, 1, 2 }, SocketFlags.None, cancellationToken);
        var method = new byte[2];
        await ReadExactlyAsync(socket, method, cancellationToken);
        if (method[0] != 5 || method[1] != 2)
        {
            throw new IOException($"proxy did not choose username/password: {method[1]}");
        }

        var name = Encoding.UTF8.GetBytes(user);
        var secret = Encoding.UTF8.GetBytes(password);
        await socket.SendAsync((byte[])[1, (byte)name.Length, .. name, (byte)secret.Length, .. secret], SocketFlags.None, cancellationToken);
        var reply = new byte[2];
        await ReadExactlyAsync(socket, reply, cancellationToken);
        if (reply[0] != 1)
        {
            throw new IOException($"login reply version {reply[0]}, not 1");
        }

        return reply[1];
    }

    /// <summary>Reads a whole SOCKS5 reply and returns REP; 0xFF if the proxy closed instead.</summary>
    public static async Task<byte> ReadReplyAsync(Socket socket, CancellationToken cancellationToken)
    {
        var head = new byte[4];
        if (!await TryReadExactlyAsync(socket, head, cancellationToken))
        {
            return 0xFF;
        }

        var rest = head[3] switch
        {
            1 => 4 + 2,
            4 => 16 + 2,
            3 => -1,
            _ => throw new IOException($"bad ATYP in reply: {head[3]}"),
        };
        if (rest < 0)
        {
            var length = new byte[1];
            await ReadExactlyAsync(socket, length, cancellationToken);
            rest = length[0] + 2;
        }

        await ReadExactlyAsync(socket, new byte[rest], cancellationToken);
        return head[1];
    }

    public static async Task ReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (!await TryReadExactlyAsync(socket, buffer, cancellationToken))
        {
            throw new IOException("connection closed early");
        }
    }

    public static async Task<bool> TryReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            var received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (received == 0)
            {
                return false;
            }

            buffer = buffer[received..];
        }

        return true;
    }

    /// <summary>
    /// Reads until the peer closes, by a FIN or by a reset; returns everything read before. For a proxy that closes
    /// on a failure: data the client sent that reached the server after the local's first-data wait (a loaded
    /// machine) is unread when the server closes, so the server's kernel resets (as ss-server's does), and the local
    /// passes the reset on. Either way the connection is closed.
    /// </summary>
    public static async Task<byte[]> ReadUntilClosedAsync(Socket socket, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) is var received and > 0)
            {
                all.Write(buffer, 0, received);
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // Closed by a reset.
        }

        return all.ToArray();
    }

    /// <summary>Reads until the peer closes; returns everything read.</summary>
    public static async Task<byte[]> ReadToEndAsync(Socket socket, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (received == 0)
            {
                return all.ToArray();
            }

            all.Write(buffer, 0, received);
        }
    }
}
