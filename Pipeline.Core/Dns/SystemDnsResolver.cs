using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>The operating system's resolver (getaddrinfo), ordered by preference: IPv4 first unless <paramref name="ipv6First"/>.</summary>
internal sealed class SystemDnsResolver(bool ipv6First = false) : IDnsResolver
{
    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (IpLiteral.TryParse(host, out var literal))
        {
            return [literal];
        }

        try
        {
            var addresses = await System.Net.Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
            var preferred = ipv6First ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
            return [.. addresses.OrderBy(a => a.AddressFamily == preferred ? 0 : 1)];
        }
        catch (SocketException)
        {
            return [];
        }
        catch (ArgumentException)
        {
            return [];
        }
    }
}
