using System.Buffers.Binary;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>Sizes and checks of the SIP022 (Shadowsocks 2022) TCP framing.</summary>
/// <remarks>
/// <code>
/// request:  salt | seal(fixed header) | seal(variable header) | seal(length) | seal(payload) | ...
/// response: salt | seal(response header)                      | seal(payload) | seal(length) | seal(payload) | ...
///
/// fixed header     type 0 (1) | timestamp u64 BE (8) | variable header length u16 BE (2)        = 11 bytes
/// variable header  ATYP | address | port | padding length u16 BE | padding (0..900) | initial payload
/// response header  type 1 (1) | timestamp u64 BE (8) | request salt (16/32) | payload length u16 BE (2)
/// </code>
/// Each seal uses the current nonce (a 12-byte little-endian counter from zero) and then increments it, as SIP004.
/// A payload chunk may carry up to 0xFFFF bytes; a timestamp more than 30 s from this machine's clock is a replay.
/// </remarks>
internal static class Aead2022Framing
{
    /// <summary>The header type of a request stream.</summary>
    public const byte RequestType = 0;

    /// <summary>The header type of a response stream.</summary>
    public const byte ResponseType = 1;

    /// <summary>Type, timestamp and the variable header's length.</summary>
    public const int RequestFixedHeaderSize = 1 + 8 + 2;

    /// <summary>The most padding a request may carry.</summary>
    public const int MaxPaddingLength = 900;

    /// <summary>The one 2022 method whose UDP packets are sealed whole with XChaCha20-Poly1305 under the PSK (SIP022 § 4.1).</summary>
    public const string ChaChaMethod = "2022-blake3-chacha20-poly1305";

    /// <summary>How far a header's timestamp may be from this machine's clock.</summary>
    public static readonly TimeSpan TimestampWindow = TimeSpan.FromSeconds(30);

    /// <summary>Type, timestamp, the request's salt and the first payload's length.</summary>
    public static int ResponseHeaderSize(int saltSize) => 1 + 8 + saltSize + 2;

    /// <summary>Writes a header's type and timestamp (the first 9 bytes of either header).</summary>
    public static void WriteTypeAndTime(Span<byte> header, byte type, TimeProvider time)
    {
        header[0] = type;
        BinaryPrimitives.WriteUInt64BigEndian(header[1..], (ulong)time.GetUtcNow().ToUnixTimeSeconds());
    }

    /// <summary>Whether a header's timestamp (after its type byte) is within <see cref="TimestampWindow"/> of now.</summary>
    public static bool HasFreshTime(ReadOnlySpan<byte> header, TimeProvider time)
    {
        var sent = BinaryPrimitives.ReadUInt64BigEndian(header[1..]);
        var now = (ulong)time.GetUtcNow().ToUnixTimeSeconds();
        var skew = sent > now ? sent - now : now - sent;
        return skew <= (ulong)TimestampWindow.TotalSeconds;
    }
}
