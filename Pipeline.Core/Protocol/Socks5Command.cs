namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>SOCKS5 request commands (RFC 1928 § 4).</summary>
internal enum Socks5Command : byte
{
    Connect = 1,
    Bind = 2,
    UdpAssociate = 3,
}
