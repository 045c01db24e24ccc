using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;

namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>
/// One list of an <see cref="AccessControlList"/>: networks for addresses, rules for host names. Lists run to thousands
/// of entries (the usual "bypass China" ACLs: 8,000 networks, 6,000 domains) and are asked once per connection, so:
/// IPv4 networks become sorted, merged ranges searched by halves; rules of the two literal forms those lists are made
/// of, <c>(^|\.)example\.com$</c> (the domain and its subdomains) and <c>^example\.com$</c> (the name alone), go into
/// hash sets looked up once per label of the name; only other rules are run as regular expressions, one after another.
/// </summary>
internal sealed class AclSection
{
    private const string SubdomainsPrefix = @"(^|\.)";

    private readonly List<IPNetwork> _networks = [];
    private readonly List<IPNetwork> _ipv6 = [];
    private readonly HashSet<string> _domains = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _names = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<Regex> _rules = [];
    private readonly List<(uint Start, uint End)> _ipv4Read = [];
    private (uint Start, uint End)[] _ipv4 = [];

    /// <summary>How many networks and addresses the list holds.</summary>
    public int NetworkCount => _networks.Count;

    public bool IsEmpty => _networks.Count == 0 && _domains.Count == 0 && _names.Count == 0 && _rules.Count == 0;

    public void Add(IPNetwork network)
    {
        network = Multiplexing.DualStack.Unmapped(network); // addresses are looked up unmapped
        _networks.Add(network);
        if (network.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6)
        {
            _ipv6.Add(network);
            return;
        }

        var start = BinaryPrimitives.ReadUInt32BigEndian(network.BaseAddress.GetAddressBytes());
        _ipv4Read.Add((start, start | (uint)(0xFFFF_FFFFUL >> network.PrefixLength))); // a 32-bit shift by 32 would be by 0
    }

    /// <summary>Once every entry is in: the IPv4 ranges sorted and merged, for <see cref="Contains"/>.</summary>
    public void Seal()
    {
        var ranges = new List<(uint Start, uint End)>(_ipv4Read.Count);
        foreach (var range in _ipv4Read.OrderBy(static r => r.Start))
        {
            if (ranges.Count > 0 && range.Start <= ranges[^1].End + 1UL)
            {
                ranges[^1] = (ranges[^1].Start, Math.Max(ranges[^1].End, range.End));
            }
            else
            {
                ranges.Add(range);
            }
        }

        _ipv4 = [.. ranges];
    }

    /// <summary>Adds a host-name rule; throws <see cref="ArgumentException"/> for a pattern that is no regular expression.</summary>
    public void AddRule(string pattern, TimeSpan matchTimeout)
    {
        if (pattern.StartsWith(SubdomainsPrefix, StringComparison.Ordinal) && pattern.EndsWith('$') && Literal(pattern[SubdomainsPrefix.Length..^1]) is { } domain)
        {
            _domains.Add(domain);
        }
        else if (pattern.StartsWith('^') && pattern.EndsWith('$') && Literal(pattern[1..^1]) is { } name)
        {
            _names.Add(name);
        }
        else
        {
            _rules.Add(new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.IgnoreCase, matchTimeout));
        }
    }

    public bool Contains(IPAddress address)
    {
        address = Multiplexing.DualStack.Unmapped(address);

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> bytes = stackalloc byte[4];
            address.TryWriteBytes(bytes, out _);
            var value = BinaryPrimitives.ReadUInt32BigEndian(bytes);
            int low = 0, high = _ipv4.Length - 1;
            while (low <= high)
            {
                var middle = (low + high) >>> 1;
                if (value < _ipv4[middle].Start)
                {
                    high = middle - 1;
                }
                else if (value > _ipv4[middle].End)
                {
                    low = middle + 1;
                }
                else
                {
                    return true;
                }
            }

            return false;
        }

        foreach (var network in _ipv6)
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
        host = host.TrimEnd('.'); // "example.com." is example.com (the resolver takes it so), and must match as it
        if (_names.Contains(host))
        {
            return true;
        }

        if (_domains.Count > 0)
        {
            // The name itself, then each parent: a.b.example.com, b.example.com, example.com, com.
            for (var rest = host; ; rest = rest[(rest.IndexOf('.') + 1)..])
            {
                if (_domains.Contains(rest))
                {
                    return true;
                }

                if (!rest.Contains('.', StringComparison.Ordinal))
                {
                    break;
                }
            }
        }

        return MatchesRule(host);
    }

    /// <summary>
    /// The rules run as regular expressions, apart and not inlined, so that <see cref="Matches"/> names no
    /// <see cref="Regex"/> type (not even <c>_rules.Count</c>): the resolve stage's tier-1 compile reads
    /// <see cref="AccessControlList.BlocksOutbound(string)"/> and <see cref="Matches"/> as inline candidates, whatever
    /// the ACL, and so loaded System.Text.RegularExpressions into every server during its second burst of connections.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool MatchesRule(string host)
    {
        foreach (var rule in _rules)
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

    /// <summary>The name a regular expression of only letters, digits, hyphens and escaped dots stands for; null for any other.</summary>
    private static string? Literal(string pattern)
    {
        var name = new System.Text.StringBuilder(pattern.Length);
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length && pattern[i + 1] == '.')
            {
                name.Append('.');
                i++;
            }
            else if (char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_')
            {
                name.Append(c);
            }
            else
            {
                return null;
            }
        }

        return name.Length > 0 ? name.ToString() : null;
    }
}
