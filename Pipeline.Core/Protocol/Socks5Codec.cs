using System.Net;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>SOCKS5 messages (RFC 1928) as the local side reads and writes them.</summary>
/// <remarks>
/// Every reader returns <see cref="AddressParseStatus"/> values for any input and never throws; on anything but
/// <see cref="AddressParseStatus.Ok"/> the out values are default and nothing is consumed. The reserved bytes
/// (RSV) are not checked, as in shadowsocks-libev.
/// </remarks>
internal static class Socks5Codec
{
    /// <summary>Method byte for "no authentication required".</summary>
    public const byte NoAuthentication = 0x00;

    /// <summary>Method byte for "username/password" (RFC 1929).</summary>
    public const byte UsernamePassword = 0x02;

    /// <summary>The version byte of the username/password sub-negotiation (RFC 1929), request and reply.</summary>
    public const byte UsernamePasswordVersion = 0x01;

    /// <summary>The username/password reply's STATUS for success; any other value is a failure (RFC 1929 sends 0x01).</summary>
    public const byte UsernamePasswordSucceeded = 0x00;

    /// <summary>The username/password reply's STATUS this side sends for a failure.</summary>
    public const byte UsernamePasswordFailed = 0x01;

    /// <summary>The longest username/password request: VER, ULEN, 255 bytes of name, PLEN, 255 bytes of password.</summary>
    public const int MaxUsernamePasswordSize = 1 + 1 + 255 + 1 + 255;

    /// <summary>Method byte for "no acceptable methods".</summary>
    public const byte NoAcceptableMethods = 0xFF;

    /// <summary>The protocol version byte that starts every SOCKS5 message except UDP datagrams.</summary>
    public const byte Version = 0x05;

    /// <summary>Size of a UDP request header before the address: <c>RSV(2) | FRAG(1)</c>.</summary>
    private const int UdpPrefixSize = 3;

    /// <summary>Size of a request before the address: <c>VER | CMD | RSV</c>.</summary>
    private const int RequestPrefixSize = 3;

    /// <summary>The longest reply <see cref="WriteReply"/> writes for a bound IP address (IPv6): 3 + 1 + 16 + 2.</summary>
    public const int MaxReplySize = RequestPrefixSize + 1 + 16 + 2;

    private static readonly ShadowsocksAddress s_unspecified = ShadowsocksAddress.FromIp(IPAddress.Any, 0);

    /// <summary>
    /// Reads <c>VER=5 | NMETHODS | METHODS</c>. <paramref name="noAuthOffered"/> tells whether method 0 is among them.
    /// Malformed when VER is not 5 or NMETHODS is 0.
    /// </summary>
    /// <remarks>
    /// <code>
    /// +-----+----------+----------+
    /// | VER | NMETHODS | METHODS  |
    /// +-----+----------+----------+
    /// |  1  |    1     | 1 to 255 |
    /// +-----+----------+----------+
    /// </code>
    /// </remarks>
    public static AddressParseStatus TryReadGreeting(ReadOnlySpan<byte> source, out bool noAuthOffered, out int consumed) =>
        TryReadGreeting(source, out noAuthOffered, out _, out consumed);

    /// <summary>
    /// As <see cref="TryReadGreeting(ReadOnlySpan{byte}, out bool, out int)"/>, and tells whether username/password
    /// (method 2, RFC 1929) is among the methods too.
    /// </summary>
    public static AddressParseStatus TryReadGreeting(ReadOnlySpan<byte> source, out bool noAuthOffered, out bool usernamePasswordOffered, out int consumed)
    {
        noAuthOffered = false;
        usernamePasswordOffered = false;
        consumed = 0;
        if (source.IsEmpty)
        {
            return AddressParseStatus.Incomplete;
        }

        if (source[0] != Version)
        {
            return AddressParseStatus.Malformed;
        }

        if (source.Length < 2)
        {
            return AddressParseStatus.Incomplete;
        }

        var count = source[1];
        if (count == 0)
        {
            return AddressParseStatus.Malformed;
        }

        if (source.Length < 2 + count)
        {
            return AddressParseStatus.Incomplete;
        }

        noAuthOffered = source.Slice(2, count).Contains(NoAuthentication);
        usernamePasswordOffered = source.Slice(2, count).Contains(UsernamePassword);
        consumed = 2 + count;
        return AddressParseStatus.Ok;
    }

    /// <summary>
    /// Reads the username/password request of RFC 1929, <c>VER=1 | ULEN | UNAME | PLEN | PASSWD</c>: the name and the
    /// password are the ranges of <paramref name="source"/> they hold. Malformed when VER is not 1 or either length is 0.
    /// </summary>
    /// <remarks>
    /// <code>
    /// +-----+------+----------+------+----------+
    /// | VER | ULEN |  UNAME   | PLEN |  PASSWD  |
    /// +-----+------+----------+------+----------+
    /// |  1  |  1   | 1 to 255 |  1   | 1 to 255 |
    /// +-----+------+----------+------+----------+
    /// </code>
    /// The answer is <c>VER=1 | STATUS</c>, STATUS 0 for success (<see cref="UsernamePasswordSucceeded"/>).
    /// </remarks>
    public static AddressParseStatus TryReadUsernamePassword(ReadOnlySpan<byte> source, out Range username, out Range password, out int consumed)
    {
        username = default;
        password = default;
        consumed = 0;
        if (source.IsEmpty)
        {
            return AddressParseStatus.Incomplete;
        }

        if (source[0] != UsernamePasswordVersion)
        {
            return AddressParseStatus.Malformed;
        }

        if (source.Length < 2)
        {
            return AddressParseStatus.Incomplete;
        }

        var nameLength = source[1];
        if (nameLength == 0)
        {
            return AddressParseStatus.Malformed;
        }

        var passwordAt = 2 + nameLength + 1;
        if (source.Length < passwordAt)
        {
            return AddressParseStatus.Incomplete;
        }

        var passwordLength = source[passwordAt - 1];
        if (passwordLength == 0)
        {
            return AddressParseStatus.Malformed;
        }

        if (source.Length < passwordAt + passwordLength)
        {
            return AddressParseStatus.Incomplete;
        }

        username = new Range(2, 2 + nameLength);
        password = new Range(passwordAt, passwordAt + passwordLength);
        consumed = passwordAt + passwordLength;
        return AddressParseStatus.Ok;
    }

    /// <summary>
    /// Reads <c>VER=5 | CMD | RSV=0 | ATYP | ADDR | PORT</c>. The command is returned as sent, even if unknown
    /// (the caller answers 7). Malformed when VER is not 5.
    /// </summary>
    /// <remarks>
    /// <code>
    /// +-----+-----+-------+------+----------+----------+
    /// | VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
    /// +-----+-----+-------+------+----------+----------+
    /// |  1  |  1  | X'00' |  1   | Variable |    2     |
    /// +-----+-----+-------+------+----------+----------+
    /// </code>
    /// The last three fields are the Shadowsocks address header (<see cref="AddressHeader"/>).
    /// </remarks>
    public static AddressParseStatus TryReadRequest(ReadOnlySpan<byte> source, out Socks5Command command, out ShadowsocksAddress address, out int consumed)
    {
        command = default;
        address = default;
        consumed = 0;
        if (source.IsEmpty)
        {
            return AddressParseStatus.Incomplete;
        }

        if (source[0] != Version)
        {
            return AddressParseStatus.Malformed;
        }

        if (source.Length < RequestPrefixSize)
        {
            return AddressParseStatus.Incomplete;
        }

        var status = AddressHeader.TryRead(source[RequestPrefixSize..], out var parsed, out var headerSize);
        if (status != AddressParseStatus.Ok)
        {
            return status;
        }

        command = (Socks5Command)source[1];
        address = parsed;
        consumed = RequestPrefixSize + headerSize;
        return AddressParseStatus.Ok;
    }

    /// <summary>Writes <c>5 | REP | 0 | ATYP | BND.ADDR | BND.PORT</c>; with no bound address, 0.0.0.0:0. Returns the length.</summary>
    public static int WriteReply(Socks5Reply reply, ShadowsocksAddress? bound, Span<byte> destination)
    {
        var address = bound ?? s_unspecified;
        var size = RequestPrefixSize + AddressHeader.GetSize(address);
        if (destination.Length < size)
        {
            throw new ArgumentException($"The destination needs {size} bytes but has {destination.Length}.", nameof(destination));
        }

        destination[0] = Version;
        destination[1] = (byte)reply;
        destination[2] = 0;
        return RequestPrefixSize + AddressHeader.Write(address, destination[RequestPrefixSize..]);
    }

    /// <summary>Reads the UDP request header <c>RSV(2) | FRAG | ATYP | ADDR | PORT</c>; the data follows at <paramref name="consumed"/>.</summary>
    /// <remarks>
    /// <code>
    /// +-----+------+------+----------+----------+----------+
    /// | RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
    /// +-----+------+------+----------+----------+----------+
    /// |  2  |  1   |  1   | Variable |    2     | Variable |
    /// +-----+------+------+----------+----------+----------+
    /// </code>
    /// The fragment number is returned as sent; the caller drops datagrams whose FRAG is not 0.
    /// </remarks>
    public static AddressParseStatus TryReadUdpHeader(ReadOnlySpan<byte> source, out byte fragment, out ShadowsocksAddress address, out int consumed)
    {
        fragment = 0;
        address = default;
        consumed = 0;
        if (source.Length < UdpPrefixSize)
        {
            return AddressParseStatus.Incomplete;
        }

        var status = AddressHeader.TryRead(source[UdpPrefixSize..], out var parsed, out var headerSize);
        if (status != AddressParseStatus.Ok)
        {
            return status;
        }

        fragment = source[2];
        address = parsed;
        consumed = UdpPrefixSize + headerSize;
        return AddressParseStatus.Ok;
    }

    /// <summary>Writes <c>0 | 0 | FRAG=0 | ATYP | ADDR | PORT</c>; returns the length.</summary>
    public static int WriteUdpHeader(in ShadowsocksAddress address, Span<byte> destination)
    {
        var size = UdpPrefixSize + AddressHeader.GetSize(address);
        if (destination.Length < size)
        {
            throw new ArgumentException($"The destination needs {size} bytes but has {destination.Length}.", nameof(destination));
        }

        destination[..UdpPrefixSize].Clear();
        return UdpPrefixSize + AddressHeader.Write(address, destination[UdpPrefixSize..]);
    }
}
