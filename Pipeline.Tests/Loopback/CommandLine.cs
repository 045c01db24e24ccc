using System.Globalization;
using System.Net;

namespace Shadowsocks.Pipeline.Tests.Loopback;

/// <summary>Ports as command-line arguments for the program and for shadowsocks-libev (<c>using static</c>).</summary>
internal static class CommandLine
{
    public static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    public static string Port(IPEndPoint endPoint) => Port(endPoint.Port);
}
