using System.Net;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// A destination as the Shadowsocks address header and SOCKS5 carry it: an IP address or a domain name, and a port.
/// Exactly one of <see cref="Ip"/> and <see cref="Host"/> is set.
/// </summary>
internal readonly record struct ShadowsocksAddress(IPAddress? Ip, string? Host, ushort Port)
{
    public static ShadowsocksAddress FromIp(IPAddress ip, int port) => new(ip, null, checked((ushort)port));

    public static ShadowsocksAddress FromHost(string host, int port) => new(null, host, checked((ushort)port));

    public static ShadowsocksAddress FromEndPoint(IPEndPoint endPoint) => FromIp(endPoint.Address, endPoint.Port);

    public bool IsDomain => Host is not null;

    /// <summary>host:port, a name in brackets too when it holds a ':' (the name "::1" prints [::1]:7001, not ::1:7001).</summary>
    public override string ToString() =>
        Host is not null ? $"{Bracketed(Host)}:{Port}" : new IPEndPoint(Ip!, Port).ToString();

    /// <summary>
    /// A host as it is written before ":port": in brackets when it holds a ':' (an IPv6 address, or a name that holds
    /// one), unless it is already one bracketed whole (a name sent as "[::1]" stays [::1], not [[::1]]).
    /// </summary>
    public static string Bracketed(string host) =>
        !host.Contains(':', StringComparison.Ordinal) || (host.StartsWith('[') && host.IndexOf(']', StringComparison.Ordinal) == host.Length - 1)
            ? host
            : $"[{host}]";
}
