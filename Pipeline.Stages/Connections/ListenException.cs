using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// A listening socket could not be opened: the socket error, with the address and protocol it was for. A server
/// listens on every address it is given, TCP and UDP on each (<c>"server": ["::0", "0.0.0.0"]</c>), so the one line
/// at start must name the one that failed, not the first. Still a <see cref="SocketException"/> (same error code and
/// message) for those that catch one.
/// </summary>
internal sealed class ListenException : SocketException
{
    public ListenException(IPEndPoint endPoint, ProtocolType protocol, SocketException error)
        : base((int)error.SocketErrorCode, error.Message)
    {
        EndPoint = endPoint;
        Protocol = protocol;
    }

    /// <summary>The address and port that could not be listened on.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary><see cref="ProtocolType.Tcp"/> or <see cref="ProtocolType.Udp"/>.</summary>
    public ProtocolType Protocol { get; }

    /// <summary><c>0.0.0.0:8388</c> for TCP, <c>0.0.0.0:8388 (udp)</c> for UDP.</summary>
    public string Where => Protocol == ProtocolType.Udp ? $"{EndPoint} (udp)" : EndPoint.ToString();
}
