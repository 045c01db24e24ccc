using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A SOCKS5 UDP ASSOCIATE client written from RFC 1928 in the test: the TCP control connection, and a UDP socket
/// that sends <c>RSV RSV FRAG ATYP ADDR PORT DATA</c> to the relay's bound address.
/// </summary>
internal sealed class Socks5UdpTestClient : IDisposable
{
    private readonly Socket _control;
    private readonly Socket _udp;

    private Socks5UdpTestClient(Socket control, Socket udp, IPEndPoint relay)
    {
        _control = control;
        _udp = udp;
        Relay = relay;
    }

    /// <summary>Where the proxy said to send datagrams (BND.ADDR:BND.PORT of its reply).</summary>
    public IPEndPoint Relay { get; }

    /// <param name="from">
    /// The IPv4 address the client sends its datagrams from, named in the request's DST.ADDR (RFC 1928 § 7); null: the
    /// request names 0.0.0.0 and the datagrams leave from loopback.
    /// </param>
    /// <param name="login">Logs in with username/password (RFC 1929) first; null: offers no authentication.</param>
    public static async Task<Socks5UdpTestClient> AssociateAsync(
        IPEndPoint proxy, CancellationToken cancellationToken, IPAddress? from = null, (string User, string Password)? login = null)
    {
        var control = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await control.ConnectAsync(proxy, cancellationToken);
            if (login is { } credentials)
            {
                if (await Socks5TestClient.LogInAsync(control, credentials.User, credentials.Password, cancellationToken) != 0)
                {
                    throw new IOException("login refused");
                }
            }
            else
            {
                await control.SendAsync(new byte[] { 5, 1, 0 }, SocketFlags.None, cancellationToken);
                var method = new byte[2];
                await Socks5TestClient.ReadExactlyAsync(control, method, cancellationToken);
            }

            await control.SendAsync((byte[])[5, 3, 0, 1, .. (from ?? IPAddress.Any).GetAddressBytes(), 0, 0], SocketFlags.None, cancellationToken);
            var head = new byte[4];
            await Socks5TestClient.ReadExactlyAsync(control, head, cancellationToken);
            if (head[1] != 0)
            {
                throw new IOException($"UDP ASSOCIATE refused with reply {head[1]}");
            }

            var address = new byte[head[3] == 4 ? 16 : 4];
            await Socks5TestClient.ReadExactlyAsync(control, address, cancellationToken);
            var port = new byte[2];
            await Socks5TestClient.ReadExactlyAsync(control, port, cancellationToken);
            var relay = new IPEndPoint(new IPAddress(address), (port[0] << 8) | port[1]);
            var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            udp.Bind(new IPEndPoint(from ?? IPAddress.Loopback, 0));
            return new Socks5UdpTestClient(control, udp, relay);
        }
        catch
        {
            control.Dispose();
            throw;
        }
    }

    public static byte[] Request(string host, int port, ReadOnlySpan<byte> data)
    {
        byte[] header;
        if (IPAddress.TryParse(host, out var ip))
        {
            var bytes = ip.GetAddressBytes();
            header = [0, 0, 0, (byte)(bytes.Length == 4 ? 1 : 4), .. bytes, (byte)(port >> 8), (byte)port];
        }
        else
        {
            var name = Encoding.ASCII.GetBytes(host);
            header = [0, 0, 0, 3, (byte)name.Length, .. name, (byte)(port >> 8), (byte)port];
        }

        return [.. header, .. data];
    }

    public Task SendAsync(string host, int port, ReadOnlySpan<byte> data, CancellationToken cancellationToken) =>
        SendRawAsync(Request(host, port, data), cancellationToken);

    public async Task SendRawAsync(byte[] datagram, CancellationToken cancellationToken) =>
        await _udp.SendToAsync(datagram, SocketFlags.None, Relay, cancellationToken);

    /// <summary>
    /// Receives one reply from the relay: its RSV/FRAG must be zero; returns the data after the address header.
    /// Datagrams from anywhere else are skipped: this socket's port was free a moment ago, and a relay of another test
    /// that still has a late reply for that port's previous owner may send it here. (A reply the relay sends from a
    /// wrong address is never accepted, so such a bug still fails the test, by its timeout.)
    /// </summary>
    public async Task<byte[]> ReceiveAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[65_536];
        SocketReceiveFromResult result;
        do
        {
            result = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancellationToken);
        }
        while (!Relay.Equals(result.RemoteEndPoint));

        Assert.Equal(0, buffer[0] | buffer[1] | buffer[2]);
        var headerLength = buffer[3] switch
        {
            1 => 4 + 4 + 2,
            4 => 4 + 16 + 2,
            3 => 4 + 1 + buffer[4] + 2,
            _ => throw new IOException($"unknown address type {buffer[3]} in a reply"),
        };
        return buffer[headerLength..result.ReceivedBytes];
    }

    /// <summary>Receives, or null when nothing arrives within <paramref name="wait"/>.</summary>
    public async Task<byte[]?> TryReceiveAsync(TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            return await ReceiveAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public void CloseControl() => _control.Dispose();

    public void Dispose()
    {
        _control.Dispose();
        _udp.Dispose();
    }
}
