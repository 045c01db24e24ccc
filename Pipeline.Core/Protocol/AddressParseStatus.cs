namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>The outcome of reading an address header or a SOCKS5 message from bytes received so far.</summary>
internal enum AddressParseStatus
{
    /// <summary>A whole value was read.</summary>
    Ok,

    /// <summary>The bytes so far are a valid prefix; more are needed.</summary>
    Incomplete,

    /// <summary>ATYP is not 1, 3 or 4 (SOCKS5 reply 8).</summary>
    UnsupportedAddressType,

    /// <summary>The bytes cannot be a valid value (zero-length domain, bad version, ...).</summary>
    Malformed,
}
