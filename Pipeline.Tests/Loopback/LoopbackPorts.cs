using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Tests.Loopback;

/// <summary>
/// Port numbers for processes the tests start and that must be told a port before they bind it.
/// A port the kernel hands out for <c>bind(0)</c> is free when asked but may be taken again before the child binds it:
/// every outgoing connection of the run draws from the same ephemeral range. So these come from below that range,
/// where the kernel never picks, are free for both TCP and UDP (ss-server -u, dnsmasq and our local bind both), and
/// are handed out once per run.
/// </summary>
internal static class LoopbackPorts
{
    private const int Lowest = 10_000;
    private static readonly HashSet<int> s_given = [];
    private static readonly int s_highest = EphemeralStart() - 1;

    public static int Next()
    {
        for (var attempt = 0; attempt < 1_000; attempt++)
        {
            var port = Random.Shared.Next(Lowest, s_highest + 1);
            lock (s_given)
            {
                if (!s_given.Add(port))
                {
                    continue;
                }
            }

            if (Free(SocketType.Stream, ProtocolType.Tcp, port) && Free(SocketType.Dgram, ProtocolType.Udp, port))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"no port free for both TCP and UDP between {Lowest} and {s_highest}");
    }

    private static bool Free(SocketType type, ProtocolType protocol, int port)
    {
        using var probe = new Socket(AddressFamily.InterNetwork, type, protocol);
        try
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The first port of the kernel's ephemeral range (<c>ip_local_port_range</c>); Linux's default 32768.</summary>
    private static int EphemeralStart()
    {
        try
        {
            var first = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[0];
            var start = int.Parse(first, CultureInfo.InvariantCulture);
            return start > Lowest + 1_000 ? start : 32_768;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32_768;
        }
    }
}
