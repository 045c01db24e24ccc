using System.Net;
using System.Text.RegularExpressions;

namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>One list of an <see cref="AccessControlList"/>: networks for addresses, rules (regular expressions) for host names.</summary>
internal sealed class AclSection
{
    public List<IPNetwork> Networks { get; } = [];

    public List<Regex> Rules { get; } = [];

    public bool IsEmpty => Networks.Count == 0 && Rules.Count == 0;

    public bool Contains(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        foreach (var network in Networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    public bool Matches(string host)
    {
        foreach (var rule in Rules)
        {
            try
            {
                if (rule.IsMatch(host))
                {
                    return true;
                }
            }
            catch (RegexMatchTimeoutException)
            {
                // A rule that cannot decide in time does not match.
            }
        }

        return false;
    }
}
