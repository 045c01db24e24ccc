using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// Before any port opens: an outbound interface (<c>-i</c>) and source address (server's <c>-b</c>) that could not be
/// used would otherwise fail every connection one by one. Each check is null when fine, else why not.
/// </summary>
internal static class OutboundCheck
{
    public static string? Interface(string name)
    {
        if (!NetworkInterface.GetAllNetworkInterfaces().Any(n => n.Name == name))
        {
            return $"no network interface '{name}' on this machine (ip link lists them)";
        }

        try
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            OutboundSocket.BindToInterface(probe, name);
            return null;
        }
        catch (SocketException e)
        {
            return $"cannot tie sockets to {name}: {e.Message} (it needs root or CAP_NET_RAW)";
        }
    }

    public static string? Source(IPAddress address)
    {
        try
        {
            using var probe = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            probe.Bind(new IPEndPoint(address, 0));
            return null;
        }
        catch (SocketException)
        {
            return $"{address} is not an address of this machine (server: -b is the source address of its outbound connections)";
        }
    }
}
