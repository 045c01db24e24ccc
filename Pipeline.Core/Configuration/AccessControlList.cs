using System.Net;

namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>
/// An ACL file (<c>--acl</c>) in shadowsocks-libev's format. Lines are addresses, CIDR networks or regular expressions
/// for host names (searched, not anchored); <c>#</c> starts a comment, anywhere on a line (host names hold none).
/// AclSection headers choose the list the lines after them go to, and the default:
/// <list type="bullet">
/// <item><c>[black_list]</c> / <c>[bypass_list]</c> (also where lines before any header go) and <c>[white_list]</c> /
/// <c>[proxy_list]</c>;</item>
/// <item><c>[accept_all]</c> / <c>[proxy_all]</c> (the default) or <c>[reject_all]</c> / <c>[bypass_all]</c>: what happens
/// to what neither list names;</item>
/// <item><c>[outbound_block_list]</c>: destinations the server refuses.</item>
/// </list>
/// On the server, a client is refused when it is on the black list, or, under <c>[reject_all]</c>, when it is not on the
/// white list; a destination is refused when the outbound block list names its host name or any address it is reached at.
/// </summary>
internal sealed class AccessControlList
{
    private static readonly TimeSpan s_matchTimeout = TimeSpan.FromMilliseconds(100);
    private static readonly string[] s_sections =
        ["[proxy_all]", "[bypass_all]", "[proxy_list]", "[bypass_list]", "[accept_all]", "[reject_all]", "[white_list]", "[black_list]", "[outbound_block_list]"];
    private readonly AclSection _black;
    private readonly AclSection _white;
    private readonly AclSection _outboundBlock;

    private AccessControlList(bool rejectAll, AclSection black, AclSection white, AclSection outboundBlock)
    {
        black.Seal();
        white.Seal();
        outboundBlock.Seal();
        RejectAll = rejectAll;
        _black = black;
        _white = white;
        _outboundBlock = outboundBlock;
    }

    /// <summary><c>[reject_all]</c> / <c>[bypass_all]</c>: what no list names is refused (server) or bypassed (local).</summary>
    public bool RejectAll { get; }

    /// <summary>Whether some client could be refused: <c>[reject_all]</c>, or addresses on the black list.</summary>
    public bool RestrictsClients => RejectAll || _black.NetworkCount > 0;

    /// <summary>Whether the outbound block list has anything in it.</summary>
    public bool BlocksAnyOutbound => !_outboundBlock.IsEmpty;

    /// <summary>Parses the file's text; <paramref name="error"/> names the line of the first bad rule.</summary>
    public static bool TryParse(string text, out AccessControlList acl, out string? error)
    {
        var black = new AclSection();
        var white = new AclSection();
        var outboundBlock = new AclSection();
        var rejectAll = false;
        var current = black;
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var comment = raw.IndexOf('#'); // anywhere on the line, as ss-libev cuts it: '10.0.0.0/8  # office' is the network
            var line = (comment >= 0 ? raw[..comment] : raw).Trim();
            if (line.Length == 0)
            {
                continue;
            }

            switch (line)
            {
                case "[outbound_block_list]":
                    current = outboundBlock;
                    continue;
                case "[black_list]" or "[bypass_list]":
                    current = black;
                    continue;
                case "[white_list]" or "[proxy_list]":
                    current = white;
                    continue;
                case "[reject_all]" or "[bypass_all]":
                    rejectAll = true;
                    continue;
                case "[accept_all]" or "[proxy_all]":
                    rejectAll = false;
                    continue;
            }

            if (IsSectionShaped(line))
            {
                // ss-libev takes it for a regular expression, a character class that matches nearly any host name
                // ('[BYPASS_ALL]' holds a, l, s, ...); a misspelt header is never meant so.
                var known = Array.IndexOf(s_sections, line.ToLowerInvariant()) >= 0 ? $"; did you mean {line.ToLowerInvariant()}?" : "";
                acl = Empty;
                error = $"line {number}: '{line}' is not a section (sections are {string.Join(", ", s_sections)}, in lower case){known}";
                return false;
            }

            if (TryParseNetwork(line, out var network, out var prefixError))
            {
                current.Add(network);
            }
            else if (prefixError is not null)
            {
                // ADDRESS/N with N out of range: meant as a network, and as a host-name rule it would match nothing.
                acl = Empty;
                error = $"line {number}: '{line}' is not a network: {prefixError}";
                return false;
            }
            else if (IPAddress.TryParse(line, out var address))
            {
                current.Add(new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
            }
            else
            {
                try
                {
                    current.AddRule(line, s_matchTimeout);
                }
                catch (ArgumentException e)
                {
                    acl = Empty;
                    error = $"line {number}: '{line}' is neither an address, a network nor a valid regular expression ({e.Message})";
                    return false;
                }
            }
        }

        acl = new AccessControlList(rejectAll, black, white, outboundBlock);
        error = null;
        return true;
    }

    /// <summary><c>[</c> letters and underscores <c>]</c>: what a header looks like.</summary>
    private static bool IsSectionShaped(string line)
    {
        if (line.Length < 3 || line[0] != '[' || line[^1] != ']')
        {
            return false;
        }

        foreach (var c in line.AsSpan(1, line.Length - 2))
        {
            if (!char.IsAsciiLetter(c) && c != '_')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// <c>ADDRESS/PREFIX</c>, with any bits of the address beyond the prefix cleared (ss-libev takes <c>10.1.2.3/8</c> as
    /// <c>10.0.0.0/8</c>; .NET's own parser refuses it, and the line would become a host-name rule).
    /// </summary>
    private static bool TryParseNetwork(string text, out IPNetwork network, out string? prefixError)
    {
        network = default;
        prefixError = null;
        var slash = text.IndexOf('/');
        if (slash <= 0 || !IPAddress.TryParse(text[..slash], out var address))
        {
            return false;
        }

        var bytes = address.GetAddressBytes();
        if (!int.TryParse(text[(slash + 1)..], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var prefix)
            || prefix < 0 || prefix > bytes.Length * 8)
        {
            prefixError = $"the prefix length of an {(bytes.Length == 4 ? "IPv4" : "IPv6")} address is 0 to {bytes.Length * 8} (e.g. {(bytes.Length == 4 ? "10.0.0.0/8" : "2001:db8::/32")})";
            return false;
        }

        for (var bit = prefix; bit < bytes.Length * 8; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }

        network = new IPNetwork(new IPAddress(bytes), prefix);
        return true;
    }

    /// <summary>Server: whether a client at <paramref name="address"/> may connect.</summary>
    public bool Admits(IPAddress address) => RejectAll ? !_black.Contains(address) && _white.Contains(address) : !_black.Contains(address);

    /// <summary>
    /// Local: by host name, as ss-local decides first: true when a rule of the bypass (black) list names it, false when
    /// one of the proxy (white) list does, null when neither does (the address decides, <see cref="Bypasses(IPAddress)"/>).
    /// A name that is an address written out (a SOCKS5 request of type domain for <c>10.1.2.3</c>) is null: ss-local
    /// asks only the address lists for it, so it goes where the same request of type IPv4 goes.
    /// </summary>
    public bool? BypassesName(string host) =>
        Dns.IpLiteral.TryParse(host, out _) ? null : _black.Matches(host) ? true : _white.Matches(host) ? false : null;

    /// <summary>
    /// Local: by address: under <c>[proxy_all]</c> directly only when on the bypass list; under <c>[bypass_all]</c>
    /// directly unless on the proxy list (and not on the bypass list): the server's refusal rule, for the other side.
    /// </summary>
    public bool Bypasses(IPAddress address) => !Admits(address);

    /// <summary>Server: whether the outbound block list names <paramref name="host"/> (a host name, by its rules).</summary>
    public bool BlocksOutbound(string host) => _outboundBlock.Matches(host);

    /// <summary>Server: whether the outbound block list holds <paramref name="address"/>.</summary>
    public bool BlocksOutbound(IPAddress address) => _outboundBlock.Contains(address);

    private static AccessControlList Empty { get; } = new(false, new AclSection(), new AclSection(), new AclSection());
}
