using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>Shadowsocks UDP packets: AEAD <c>salt | sealed(payload) | tag</c> or stream <c>IV | ciphertext</c>.</summary>
internal static class UdpPacketCodec
{
    /// <summary>The largest packet <see cref="Encrypt"/> writes for a payload of <paramref name="payloadLength"/> bytes.</summary>
    public static int MaxPacketSize(CipherInfo cipher, int payloadLength) => throw new NotImplementedException();

    /// <summary>Encrypts one payload (address header and data) with a fresh salt/IV; returns the packet length.</summary>
    public static int Encrypt(CipherInfo cipher, byte[] masterKey, ReadOnlySpan<byte> payload, Span<byte> packet) =>
        throw new NotImplementedException();

    /// <summary>Decrypts one packet; false (never an exception) when it is too short or does not authenticate.</summary>
    public static bool TryDecrypt(CipherInfo cipher, byte[] masterKey, ReadOnlySpan<byte> packet, Span<byte> payload, out int payloadLength) =>
        throw new NotImplementedException();
}
