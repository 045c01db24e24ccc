using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// A host name that is an IP address written out (what getaddrinfo takes as numeric: <c>10.1.2.3</c>, <c>::1</c>,
/// <c>fe80::1%2</c>). <see cref="IPAddress.TryParse(string?, out IPAddress?)"/> also takes a bracketed form with a port
/// (<c>[::1]:22</c>) and drops the port; a name on the wire spelled so would then reach that address on the request's
/// port, where ss-libev's lookup of it fails. Brackets are only ever the configuration's (which takes them off), so a
/// name that has them is a name, not an address.
/// </summary>
internal static class IpLiteral
{
    public static bool TryParse(string host, out IPAddress address)
    {
        if (host.Contains('[') || host.Contains(']') || !IPAddress.TryParse(host, out var parsed))
        {
            address = IPAddress.None;
            return false;
        }

        address = parsed;
        return true;
    }
}
