namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>Sizes of the SIP004 AEAD chunk framing.</summary>
/// <remarks>
/// <code>
/// TCP stream:  +--------+---------+---------+-----+
///              | salt   | chunk 0 | chunk 1 | ... |
///              +--------+---------+---------+-----+
/// chunk:       +------------------+------+------------------+------+
///              | sealed length    | tag  | sealed payload   | tag  |
///              | 2, big-endian    | 16   | 0..0x3FFF        | 16   |
///              +------------------+------+------------------+------+
/// </code>
/// Each seal uses the current nonce, then the nonce is incremented: the length takes an even nonce, the payload the
/// next odd one.
/// </remarks>
internal static class AeadFraming
{
    /// <summary>SIP004: the largest chunk payload; the top two bits of the 16-bit length are reserved and zero.</summary>
    public const int MaxPayloadSize = 0x3FFF;

    /// <summary>SIP004: the chunk length field is a 2-byte big-endian integer.</summary>
    public const int LengthSize = 2;

    /// <summary>The chunk overhead for a tag size: the sealed length with its tag, and the payload's tag.</summary>
    public static int ChunkOverhead(int tagSize) => LengthSize + tagSize + tagSize;

    /// <summary>Ciphertext size of <paramref name="plaintextLength"/> bytes cut into chunks of at most <see cref="MaxPayloadSize"/> (salt excluded).</summary>
    public static int ChunkedSize(int plaintextLength, int tagSize)
    {
        var chunks = (plaintextLength + MaxPayloadSize - 1) / MaxPayloadSize;
        return checked(plaintextLength + (chunks * ChunkOverhead(tagSize)));
    }
}
