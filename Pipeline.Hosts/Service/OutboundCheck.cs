using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// Before any port opens: an outbound interface (<c>-i</c>) that could not be used would otherwise fail every
/// connection one by one. Null when fine, else why not.
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
}
