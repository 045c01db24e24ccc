using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>Opens a listening TCP socket the way the relays want it.</summary>
internal static class Listener
{
    /// <summary>Listen backlog: generous, like ss-libev's SOMAXCONN default, so bursts of connects are not refused.</summary>
    private const int Backlog = 1024;

    /// <summary>
    /// How long the kernel holds a connection whose client has sent nothing before handing it over anyway
    /// (<c>TCP_DEFER_ACCEPT</c>, for listeners whose clients speak first). A SOCKS5 client sends its greeting with the
    /// handshake's last packet, so this only delays a client that stays silent, whose handshake timeout starts once
    /// it is handed over. The kernel counts it in SYN-ACK retransmissions: 1 s is one (the connection comes about 1 s
    /// late); 5 s were three, and a silent client was closed 7 s after its handshake timeout.
    /// </summary>
    private const int DeferAcceptSeconds = 1;

    /// <summary>Connections whose SYN brought data that may wait to be accepted at once (<c>TCP_FASTOPEN</c>'s queue).</summary>
    private const int FastOpenQueue = 256;

    private const int IpProtocolTcp = 6;
    private const int TcpDeferAccept = 9;
    private const int TcpFastOpen = 23;
    private const int SolSocket = 1;
    private const int SoReuseAddress = 2;
    private const int SoReusePort = 15;

    /// <summary>
    /// Opens and listens. With <paramref name="clientSpeaksFirst"/> (the local's SOCKS5 port) a connection is handed
    /// over only once its first bytes have arrived, so the handshake reads them at once instead of waiting for them
    /// (one readiness wait fewer per connection: 1.03–1.05× connection rate, bench/RESULTS.md). Not for the server
    /// (a prober that connects and stays silent must see what ss-libev shows it) nor the tunnel (the forwarded
    /// protocol may be one whose server speaks first, as SMTP's does). With <paramref name="acceptFastOpen"/> (the
    /// server with <c>fast_open</c>) data that came in a client's SYN is accepted with it (TCP Fast Open; the kernel
    /// checks the client's cookie, so only a client that has connected before can send data in its SYN). With
    /// <paramref name="reusePort"/> other sockets with the option may listen on the same port (<c>SO_REUSEPORT</c>).
    /// <paramref name="multipath"/>: a Multipath TCP listener (it accepts plain TCP too). <paramref name="ipv6Only"/>: on
    /// <c>::</c>, IPv6 only (<see cref="RelayOptions.ListenIpv6Only"/>); otherwise <c>::</c> takes IPv4 too.
    /// </summary>
    public static Socket Open(
        IPEndPoint endPoint, bool clientSpeaksFirst = false, bool acceptFastOpen = false, bool reusePort = false, bool multipath = false, bool ipv6Only = false)
    {
        var socket = StreamSockets.Open(endPoint.AddressFamily, multipath);
        try
        {
            // SO_REUSEADDR (a restart binds while old connections linger in TIME_WAIT) set directly: .NET's ReuseAddress
            // option also sets SO_REUSEPORT on Linux, which let a second instance bind the same port without a word.
            socket.SetRawSocketOption(SolSocket, SoReuseAddress, BitConverter.GetBytes(1));
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = !ipv6Only; // set either way: a Multipath TCP socket starts with the system's default (bindv6only)
            }

            if (reusePort)
            {
                EnableReusePort(socket);
            }

            socket.Bind(endPoint);
            if (clientSpeaksFirst)
            {
                socket.SetRawSocketOption(IpProtocolTcp, TcpDeferAccept, BitConverter.GetBytes(DeferAcceptSeconds));
            }

            if (acceptFastOpen)
            {
                socket.SetRawSocketOption(IpProtocolTcp, TcpFastOpen, BitConverter.GetBytes(FastOpenQueue));
            }

            socket.Listen(Backlog);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new ListenException(endPoint, ProtocolType.Tcp, e); // names the address: a server listens on several
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary><c>SO_REUSEPORT</c>, set before the bind: TCP listeners and UDP sockets alike.</summary>
    public static void EnableReusePort(Socket socket) => socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
}
