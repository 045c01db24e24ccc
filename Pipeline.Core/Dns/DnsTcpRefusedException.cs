using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// A name server's TCP port refused the retry of an answer truncated over UDP. A <see cref="SocketException"/> with
/// <see cref="SocketError.ConnectionRefused"/>, so it is handled as a closed UDP port is (the server passed over, the
/// name's failure not cached); only its wording differs: it was said "port unreachable", as if the UDP port were closed.
/// </summary>
internal sealed class DnsTcpRefusedException : SocketException
{
    public DnsTcpRefusedException()
        : base((int)SocketError.ConnectionRefused)
    {
    }
}
