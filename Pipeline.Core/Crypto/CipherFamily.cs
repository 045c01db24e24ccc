namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>How a method frames its bytes on the wire (PROTOCOL.md).</summary>
public enum CipherFamily
{
    /// <summary>SIP004 AEAD: salt, then length-prefixed authenticated chunks.</summary>
    Aead,

    /// <summary>Legacy stream cipher: IV, then one keystream over the whole stream.</summary>
    Stream,

    /// <summary>
    /// SIP022 (Shadowsocks 2022): a base64 PSK, BLAKE3 subkeys, header chunks with a type and a timestamp, and a
    /// response bound to its request's salt; UDP in sessions with packet IDs.
    /// </summary>
    Aead2022,
}
