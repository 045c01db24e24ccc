namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>The Shadowsocks address header, <c>ATYP | ADDR | PORT</c> (the tail of a SOCKS5 request).</summary>
internal static class AddressHeader
{
    /// <summary>The largest header: ATYP, a 255-byte domain with its length byte, and the port.</summary>
    public const int MaxSize = 1 + 1 + 255 + 2;

    public static AddressParseStatus TryRead(ReadOnlySpan<byte> source, out ShadowsocksAddress address, out int consumed) =>
        throw new NotImplementedException();

    public static int GetSize(in ShadowsocksAddress address) => throw new NotImplementedException();

    public static int Write(in ShadowsocksAddress address, Span<byte> destination) => throw new NotImplementedException();
}
