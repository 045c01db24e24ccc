using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>Opens a listening TCP socket the way the relays want it.</summary>
internal static class Listener
{
    /// <summary>Listen backlog: generous, like ss-libev's SOMAXCONN default, so bursts of connects are not refused.</summary>
    private const int Backlog = 1024;

    public static Socket Open(IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.Bind(endPoint);
            socket.Listen(Backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
