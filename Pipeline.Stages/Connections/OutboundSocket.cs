using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// Where an outbound socket leaves from: a network interface (<c>-i</c>, <c>SO_BINDTODEVICE</c>) and, on the server, a
/// source address (<c>-b</c>, as ss-server's). Both apply to TCP connections and UDP sockets alike.
/// </summary>
internal static class OutboundSocket
{
    private const int SolSocket = 1;
    private const int SoBindToDevice = 25;
    private const int IpProtocolIp = 0;
    private const int IpBindAddressNoPort = 24;

    /// <summary>Ties <paramref name="socket"/> to the interface named <paramref name="name"/> (nothing when null).</summary>
    public static void BindToInterface(Socket socket, string? name)
    {
        if (name is not null)
        {
            socket.SetRawSocketOption(SolSocket, SoBindToDevice, Encoding.ASCII.GetBytes(name + "\0"));
        }
    }

    /// <summary>The interface <paramref name="socket"/> is tied to; null when none.</summary>
    public static string? BoundInterface(Socket socket)
    {
        var name = new byte[16]; // IFNAMSIZ
        var length = socket.GetRawSocketOption(SolSocket, SoBindToDevice, name);
        var text = Encoding.ASCII.GetString(name, 0, length).TrimEnd('\0');
        return text.Length == 0 ? null : text;
    }

    /// <summary>
    /// Gives <paramref name="socket"/> the source address <paramref name="source"/> when it is of the socket's family
    /// (an IPv4 source cannot carry an IPv6 connection: that one leaves from the kernel's choice, as with ss-server).
    /// With <paramref name="portAtConnect"/> (TCP) the port is left to the connect (<c>IP_BIND_ADDRESS_NO_PORT</c>), so
    /// the ephemeral ports are shared across destinations instead of one per connection being taken at bind time.
    /// </summary>
    public static void BindSource(Socket socket, IPAddress? source, bool portAtConnect)
    {
        if (source is null || source.AddressFamily != socket.AddressFamily)
        {
            return;
        }

        if (portAtConnect)
        {
            socket.SetRawSocketOption(IpProtocolIp, IpBindAddressNoPort, BitConverter.GetBytes(1));
        }

        socket.Bind(new IPEndPoint(source, 0));
    }
}
