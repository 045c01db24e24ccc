using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>Opens the UDP sockets the relays use.</summary>
internal static class UdpSockets
{
    /// <summary>Larger kernel buffers than the default, so bursts wait in the kernel instead of being dropped there.</summary>
    private const int KernelBuffer = 4 * 1024 * 1024;

    /// <summary>
    /// The relay's own socket, on the same address and port as its TCP listener (as ss-libev does); <paramref name="reusePort"/>:
    /// <c>SO_REUSEPORT</c>; <paramref name="ipv6Only"/>: on <c>::</c>, IPv6 only (as the TCP listener, <see cref="Connections.Listener.Open"/>).
    /// </summary>
    public static Socket Listen(IPEndPoint endPoint, bool reusePort = false, bool ipv6Only = false)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = !ipv6Only;
            }

            Tune(socket);
            if (reusePort)
            {
                Connections.Listener.EnableReusePort(socket);
            }

            socket.Bind(endPoint);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new Connections.ListenException(endPoint, ProtocolType.Udp, e); // names the address: a server listens on several
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Local and tunnel: one socket per client toward the server, connected so only the server's replies arrive;
    /// leaving by <paramref name="networkInterface"/> and from <paramref name="source"/> when given (<c>-i</c>,
    /// <c>outbound_bind_addr</c>).
    /// </summary>
    public static Socket ToServer(IPEndPoint server, string? networkInterface = null, IPAddress? source = null)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            Tune(socket);
            Connections.OutboundSocket.BindToInterface(socket, networkInterface);
            Connections.OutboundSocket.BindSource(socket, source, portAtConnect: false);
            socket.Connect(server);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Server: one socket per client toward any destination, dual-stack where the machine has IPv6; with a source
    /// address (<c>-b</c>) bound to it instead, so reaching only destinations of its family; leaving by
    /// <paramref name="networkInterface"/> when given (<c>-i</c>).
    /// </summary>
    public static Socket ToDestinations(IPAddress? source = null, string? networkInterface = null)
    {
        var socket = source is not null ? Bound(source) : DualStackOrIPv4();
        try
        {
            Connections.OutboundSocket.BindToInterface(socket, networkInterface);
            Tune(socket);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A socket bound to <paramref name="address"/>, any port.</summary>
    private static Socket Bound(IPAddress address)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Bind(new IPEndPoint(address, 0));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A dual-stack socket on any address, or an IPv4 one where the machine has no IPv6.</summary>
    private static Socket DualStackOrIPv4()
    {
        Socket? socket = null;
        try
        {
            socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
            socket.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
            return socket;
        }
        catch (SocketException)
        {
            socket?.Dispose();
            return Bound(IPAddress.Any);
        }
    }

    /// <summary>
    /// Non-blocking: the relay's event loop receives and sends on its own thread, and a send that finds the kernel's
    /// buffer full fails (the datagram is counted as dropped) instead of holding the loop.
    /// </summary>
    private static void Tune(Socket socket)
    {
        socket.Blocking = false;
        try
        {
            socket.ReceiveBufferSize = KernelBuffer;
            socket.SendBufferSize = KernelBuffer;
        }
        catch (SocketException)
        {
            // The kernel caps these (net.core.rmem_max); the default is fine too.
        }
    }
}
