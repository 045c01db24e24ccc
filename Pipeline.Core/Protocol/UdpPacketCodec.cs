using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>Shadowsocks UDP packets: AEAD <c>salt | sealed(payload) | tag</c> or stream <c>IV | ciphertext</c>.</summary>
/// <remarks>
/// <code>
/// AEAD:   +-----------------+---------------------------+-----+
///         | salt (SaltSize) | sealed payload            | tag |
///         +-----------------+---------------------------+-----+
///         subkey = HKDF-SHA1(master, salt, "ss-subkey"); nonce all zero
/// stream: +-----------------+---------------------------+
///         | IV (SaltSize)   | ciphertext of the payload |
///         +-----------------+---------------------------+
/// payload = address header | data; a fresh salt/IV per packet
/// </code>
/// Both directions work in place: the payload may already sit at <c>packet[SaltSize..]</c> when encrypting, and the
/// payload buffer may be <c>packet[SaltSize..]</c> when decrypting. Any other overlap is not supported.
/// The methods OpenSSL implements go through <see cref="PacketAead"/> (a re-keyed context per thread instead of a
/// new one per packet); the others through <see cref="CipherInfo.CreateAead"/>.
/// </remarks>
internal static class UdpPacketCodec
{
    /// <summary>Each packet has its own subkey, so the nonce is always zero (SIP004); long enough for every AEAD's nonce.</summary>
    private static readonly byte[] s_zeroNonce = new byte[24];

    /// <summary>SIP022's UDP is session-based (its own header, IDs and replay windows): <see cref="Udp2022Codec"/>'s.</summary>
    private static void NotFor2022(CipherInfo cipher)
    {
        if (cipher.Is2022)
        {
            throw new NotSupportedException($"{cipher.Name} packets are sealed in sessions: Udp2022Codec.");
        }
    }

    /// <summary>The largest packet <see cref="Encrypt"/> writes for a payload of <paramref name="payloadLength"/> bytes.</summary>
    public static int MaxPacketSize(CipherInfo cipher, int payloadLength) => cipher.SaltSize + payloadLength + cipher.TagSize;

    /// <summary>Encrypts one payload (address header and data) with a fresh salt/IV; returns the packet length.</summary>
    public static int Encrypt(CipherInfo cipher, byte[] masterKey, ReadOnlySpan<byte> payload, Span<byte> packet)
    {
        NotFor2022(cipher);
        var size = MaxPacketSize(cipher, payload.Length);
        if (packet.Length < size)
        {
            throw new ArgumentException($"The packet needs {size} bytes but has {packet.Length}.", nameof(packet));
        }

        var salt = packet[..cipher.SaltSize];
        SaltSource.Fill(salt);
        var body = packet.Slice(cipher.SaltSize, payload.Length);
        if (cipher.Family == CipherFamily.Aead)
        {
            Span<byte> subkey = stackalloc byte[cipher.KeySize];
            KeyDerivation.SessionSubkey(masterKey, salt, subkey);
            Seal(cipher, subkey, payload, body, packet.Slice(cipher.SaltSize + payload.Length, cipher.TagSize));
            CryptographicOperations.ZeroMemory(subkey);
        }
        else
        {
            using var stream = cipher.CreateStream(masterKey, salt, encrypt: true);
            stream.Process(payload, body);
        }

        return size;
    }

    /// <summary>Decrypts one packet; false (never an exception) when it is too short or does not authenticate.</summary>
    /// <remarks>Also false when <paramref name="payload"/> is shorter than the packet's body; on false nothing in it is valid.</remarks>
    public static bool TryDecrypt(CipherInfo cipher, byte[] masterKey, ReadOnlySpan<byte> packet, Span<byte> payload, out int payloadLength)
    {
        NotFor2022(cipher);
        payloadLength = 0;
        var bodyLength = packet.Length - cipher.SaltSize - cipher.TagSize;
        if (bodyLength < 0 || payload.Length < bodyLength)
        {
            return false;
        }

        var salt = packet[..cipher.SaltSize];
        var body = packet.Slice(cipher.SaltSize, bodyLength);
        var plaintext = payload[..bodyLength];
        if (cipher.Family == CipherFamily.Aead)
        {
            Span<byte> subkey = stackalloc byte[cipher.KeySize];
            KeyDerivation.SessionSubkey(masterKey, salt, subkey);
            var opened = TryOpen(cipher, subkey, body, packet[(cipher.SaltSize + bodyLength)..], plaintext);
            CryptographicOperations.ZeroMemory(subkey);
            if (!opened)
            {
                plaintext.Clear();
                return false;
            }
        }
        else
        {
            using var stream = cipher.CreateStream(masterKey, salt, encrypt: false);
            stream.Process(body, plaintext);
        }

        payloadLength = bodyLength;
        return true;
    }

    /// <summary>On the thread's re-keyed OpenSSL context where the method has one, else on a one-packet AEAD.</summary>
    private static void Seal(CipherInfo cipher, ReadOnlySpan<byte> subkey, ReadOnlySpan<byte> payload, Span<byte> body, Span<byte> tag)
    {
        if (PacketAead.TryGet(cipher, out var packetAead))
        {
            packetAead.Seal(subkey, s_zeroNonce.AsSpan(0, 12), payload, body, tag);
            return;
        }

        using var aead = cipher.CreateAead(subkey);
        aead.Encrypt(s_zeroNonce.AsSpan(0, aead.NonceSize), payload, body, tag);
    }

    private static bool TryOpen(CipherInfo cipher, ReadOnlySpan<byte> subkey, ReadOnlySpan<byte> body, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        if (PacketAead.TryGet(cipher, out var packetAead))
        {
            return packetAead.TryOpen(subkey, s_zeroNonce.AsSpan(0, 12), body, tag, plaintext);
        }

        using var aead = cipher.CreateAead(subkey);
        return aead.TryDecrypt(s_zeroNonce.AsSpan(0, aead.NonceSize), body, tag, plaintext);
    }
}
