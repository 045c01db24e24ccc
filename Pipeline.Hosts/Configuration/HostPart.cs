namespace Shadowsocks.Pipeline.Hosts.Configuration;

/// <summary>The host in a <c>HOST:PORT</c> text (<c>--server-url</c>, <c>-L</c>): what comes before the port's colon.</summary>
internal static class HostPart
{
    /// <summary>
    /// The host, an IPv6 address's brackets taken off; null for an IPv6 address without brackets, whose last colon was
    /// taken for the port's (<c>2001:db8::53</c> is not host <c>2001:db8:</c>, port 53).
    /// </summary>
    public static string? Unbracket(string hostPart) =>
        hostPart.StartsWith('[') && hostPart.EndsWith(']') ? hostPart[1..^1]
        : hostPart.Contains(':') ? null
        : hostPart;
}
