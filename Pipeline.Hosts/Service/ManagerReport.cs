using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// <c>--manager-address</c>, for ss-manager (which starts one server per port with it): every <see cref="Interval"/>,
/// the datagram <c>stat: {"PORT":BYTES}</c> (NUL-terminated, as ss-server sends it), BYTES being what this process
/// has relayed since it started. To <c>HOST:PORT</c> over UDP, or to a UNIX datagram socket at a path, from a socket
/// of our own at <c>/tmp/shadowsocks.PORT</c> as ss-server binds one. A manager that is not there costs nothing but
/// the lost datagram.
/// </summary>
internal sealed class ManagerReport : IDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private readonly string _address;
    private readonly int _port;
    private readonly ITimer _timer;

    public ManagerReport(string address, int port, TimeProvider time)
    {
        _address = address;
        _port = port;
        _timer = time.CreateTimer(static state => ((ManagerReport)state!).Send(), this, Interval, Interval);
    }

    /// <summary>The datagram for <paramref name="bytes"/> relayed on <paramref name="port"/>.</summary>
    public static byte[] Message(int port, long bytes) =>
        Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"stat: {{\"{port}\":{bytes}}}\0"));

    public void Send()
    {
        var message = Message(_port, TrafficTotal.Bytes);
        try
        {
            if (TryParseEndPoint(_address) is { } endPoint)
            {
                using var udp = new Socket(endPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                udp.SendTo(message, endPoint);
                return;
            }

            var own = $"/tmp/shadowsocks.{_port.ToString(CultureInfo.InvariantCulture)}";
            File.Delete(own);
            using var unix = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            unix.Bind(new UnixDomainSocketEndPoint(own));
            try
            {
                unix.SendTo(message, new UnixDomainSocketEndPoint(_address));
            }
            finally
            {
                File.Delete(own);
            }
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            // The manager is not there (yet, or any more): the next report says the same, and more.
        }
    }

    public void Dispose() => _timer.Dispose();

    /// <summary><c>HOST:PORT</c> (an address, <c>[v6]:PORT</c>, or <c>localhost:PORT</c>); null for anything else, which is a socket path.</summary>
    private static IPEndPoint? TryParseEndPoint(string address)
    {
        if (address.StartsWith("localhost:", StringComparison.Ordinal))
        {
            address = "127.0.0.1" + address["localhost".Length..];
        }

        return !address.Contains('/', StringComparison.Ordinal) && IPEndPoint.TryParse(address, out var endPoint) && endPoint.Port != 0 ? endPoint : null;
    }
}
