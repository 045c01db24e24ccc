using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// A dual-stack (IPv6) socket speaks of IPv4 peers as IPv4-mapped IPv6 addresses. The program keeps them plain
/// (<see cref="Unmapped"/>) and maps them back only when handing one to such a socket (<see cref="For"/>).
/// </summary>
internal static class DualStack
{
    /// <summary>The plain IPv4 form of an IPv4-mapped endpoint; any other endpoint as it is.</summary>
    public static IPEndPoint Unmapped(IPEndPoint endPoint) =>
        endPoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port) : endPoint;

    /// <summary>The plain IPv4 form of an IPv4-mapped address (<c>::ffff:a.b.c.d</c>); any other address as it is.</summary>
    public static IPAddress Unmapped(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>
    /// The IPv4 network an IPv4-mapped one stands for (<c>::ffff:10.0.0.0/104</c> is <c>10.0.0.0/8</c>), so that a rule
    /// matches the unmapped addresses it is asked about; any other network as it is.
    /// </summary>
    public static IPNetwork Unmapped(IPNetwork network) =>
        network.BaseAddress.IsIPv4MappedToIPv6 && network.PrefixLength >= 96
            ? new IPNetwork(network.BaseAddress.MapToIPv4(), network.PrefixLength - 96)
            : network;

    /// <summary>The endpoint as <paramref name="socket"/> takes it: an IPv4 endpoint mapped for an IPv6 socket.</summary>
    public static IPEndPoint For(Socket socket, IPEndPoint endPoint) =>
        socket.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.AddressFamily == AddressFamily.InterNetwork
            ? new IPEndPoint(endPoint.Address.MapToIPv6(), endPoint.Port)
            : endPoint;
}
