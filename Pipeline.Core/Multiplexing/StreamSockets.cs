using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// Opens stream sockets: plain TCP, or Multipath TCP (<c>IPPROTO_MPTCP</c>, Linux 5.6+ with <c>net.mptcp.enabled</c>),
/// which .NET's <see cref="Socket"/> constructor refuses as an unknown protocol: that one is made by <c>socket(2)</c>
/// and wrapped. A Multipath TCP socket falls back to plain TCP on the wire when the peer does not speak it.
/// </summary>
internal static partial class StreamSockets
{
    private const int ProtocolMptcp = 262;
    private const int FamilyInet = 2;
    private const int FamilyInet6 = 10;
    private const int TypeStreamCloseOnExec = 1 | 0x80000; // SOCK_STREAM | SOCK_CLOEXEC
    private const int ProtocolNotSupported = 93; // EPROTONOSUPPORT

    public static Socket Open(AddressFamily family, bool multipath)
    {
        if (!multipath)
        {
            return new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        }

        var fd = Create(family == AddressFamily.InterNetworkV6 ? FamilyInet6 : FamilyInet, TypeStreamCloseOnExec, ProtocolMptcp);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new SocketException((int)(errno == ProtocolNotSupported ? SocketError.ProtocolNotSupported : SocketError.SocketError));
        }

        return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Create(int domain, int type, int protocol);
}
