namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>SOCKS5 messages (RFC 1928) as the local side reads and writes them.</summary>
internal static class Socks5Codec
{
    /// <summary>Method byte for "no authentication required".</summary>
    public const byte NoAuthentication = 0x00;

    /// <summary>Method byte for "no acceptable methods".</summary>
    public const byte NoAcceptableMethods = 0xFF;

    /// <summary>
    /// Reads <c>VER=5 | NMETHODS | METHODS</c>. <paramref name="noAuthOffered"/> tells whether method 0 is among them.
    /// Malformed when VER is not 5 or NMETHODS is 0.
    /// </summary>
    public static AddressParseStatus TryReadGreeting(ReadOnlySpan<byte> source, out bool noAuthOffered, out int consumed) =>
        throw new NotImplementedException();

    /// <summary>
    /// Reads <c>VER=5 | CMD | RSV=0 | ATYP | ADDR | PORT</c>. The command is returned as sent, even if unknown
    /// (the caller answers 7). Malformed when VER is not 5.
    /// </summary>
    public static AddressParseStatus TryReadRequest(ReadOnlySpan<byte> source, out Socks5Command command, out ShadowsocksAddress address, out int consumed) =>
        throw new NotImplementedException();

    /// <summary>Writes <c>5 | REP | 0 | ATYP | BND.ADDR | BND.PORT</c>; with no bound address, 0.0.0.0:0. Returns the length.</summary>
    public static int WriteReply(Socks5Reply reply, ShadowsocksAddress? bound, Span<byte> destination) =>
        throw new NotImplementedException();

    /// <summary>Reads the UDP request header <c>RSV(2) | FRAG | ATYP | ADDR | PORT</c>; the data follows at <paramref name="consumed"/>.</summary>
    public static AddressParseStatus TryReadUdpHeader(ReadOnlySpan<byte> source, out byte fragment, out ShadowsocksAddress address, out int consumed) =>
        throw new NotImplementedException();

    /// <summary>Writes <c>0 | 0 | FRAG=0 | ATYP | ADDR | PORT</c>; returns the length.</summary>
    public static int WriteUdpHeader(in ShadowsocksAddress address, Span<byte> destination) =>
        throw new NotImplementedException();
}
