using System.Buffers.Binary;
using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Parameters;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// An independent SIP022 (Shadowsocks 2022) UDP codec, written in the test from the spec
/// (shadowsocks-specs 2022-1, § 3.2 and § 4.1) and draft-irtf-cfrg-xchacha (§ 2.2), sharing no code with the
/// production codec. It seals and opens single packets with whatever header values a test chooses (session IDs,
/// packet IDs, type, timestamp, padding), so tests can craft good and bad packets; it keeps no state and checks
/// nothing beyond authentication and layout.
/// <code>
/// AES methods (§ 3.2):
/// +-------------------------------------------+--------------------------------+-----+
/// | AES-ECB_psk(session ID 8 | packet ID u64be) | AES-GCM_subkey(body)           | tag |
/// +-------------------------------------------+--------------------------------+-----+
/// |                    16                     |            variable            | 16  |
/// +-------------------------------------------+--------------------------------+-----+
///   subkey = BLAKE3 derive_key("shadowsocks 2022 session subkey", PSK || session ID), key length bytes
///   GCM nonce = the plaintext separate header's bytes [4..16)
///
/// 2022-blake3-chacha20-poly1305 (§ 4.1):
/// +----------+--------------------------------------------------------------+-----+
/// | nonce 24 | XChaCha20-Poly1305_psk(session ID 8 | packet ID u64be | body) | tag |
/// +----------+--------------------------------------------------------------+-----+
///
/// body, client to server: type=0 | timestamp u64be | padding length u16be | padding | ATYP ADDR PORT | payload
/// body, server to client: type=1 | timestamp u64be | client session ID 8 | padding length u16be | padding | ATYP ADDR PORT | payload
/// </code>
/// </summary>
internal sealed class Sip022UdpReference
{
    public const byte ClientType = 0;
    public const byte ServerType = 1;

    /// <summary>§ 2.2: the BLAKE3 derive_key context.</summary>
    private const string SubkeyContext = "shadowsocks 2022 session subkey";

    /// <summary>Session ID 8 | packet ID 8 (§ 3.2.2).</summary>
    private const int SeparateHeaderSize = 16;

    /// <summary>AES-GCM and Poly1305 tags.</summary>
    private const int TagSize = 16;

    /// <summary>XChaCha20 nonce (draft-irtf-cfrg-xchacha § 2.3).</summary>
    private const int XNonceSize = 24;

    private readonly byte[] _psk;
    private readonly bool _chacha;

    public Sip022UdpReference(string method, byte[] psk)
    {
        Assert.Equal(KeySize(method), psk.Length);
        _psk = psk;
        _chacha = method == "2022-blake3-chacha20-poly1305";
    }

    public static IEnumerable<string> Methods { get; } = ["2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305"];

    public static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>§ 2.1: the PSK length of a method.</summary>
    public static int KeySize(string method) => method switch
    {
        "2022-blake3-aes-128-gcm" => 16,
        "2022-blake3-aes-256-gcm" or "2022-blake3-chacha20-poly1305" => 32,
        _ => throw new ArgumentException($"not a SIP022 method: {method}", nameof(method)),
    };

    /// <summary>A random session ID (§ 3.2.2: clients and servers pick their own).</summary>
    public static ulong NewSessionId() => BinaryPrimitives.ReadUInt64BigEndian(RandomNumberGenerator.GetBytes(8));

    /// <summary>The SOCKS5 address of an IP endpoint: <c>ATYP(1 or 4) | ADDR | PORT u16be</c>.</summary>
    public static byte[] Address(IPEndPoint endPoint)
    {
        var ip = endPoint.Address.GetAddressBytes();
        return [(byte)(ip.Length == 4 ? 1 : 4), .. ip, (byte)(endPoint.Port >> 8), (byte)endPoint.Port];
    }

    /// <summary>A client-to-server packet. <paramref name="timestamp"/> defaults to now; padding is random bytes.</summary>
    public byte[] SealClient(
        ulong sessionId, ulong packetId, ReadOnlySpan<byte> address, ReadOnlySpan<byte> payload, long? timestamp = null, int paddingLength = 0, byte type = ClientType)
    {
        var body = new byte[1 + 8 + 2 + paddingLength + address.Length + payload.Length];
        body[0] = type;
        BinaryPrimitives.WriteUInt64BigEndian(body.AsSpan(1), (ulong)(timestamp ?? Now));
        WriteTail(body.AsSpan(9), paddingLength, address, payload);
        return Seal(sessionId, packetId, body);
    }

    /// <summary>A server-to-client packet, answering <paramref name="clientSessionId"/>.</summary>
    public byte[] SealServer(
        ulong sessionId, ulong packetId, ulong clientSessionId, ReadOnlySpan<byte> address, ReadOnlySpan<byte> payload, long? timestamp = null, int paddingLength = 0,
        byte type = ServerType)
    {
        var body = new byte[1 + 8 + 8 + 2 + paddingLength + address.Length + payload.Length];
        body[0] = type;
        BinaryPrimitives.WriteUInt64BigEndian(body.AsSpan(1), (ulong)(timestamp ?? Now));
        BinaryPrimitives.WriteUInt64BigEndian(body.AsSpan(9), clientSessionId);
        WriteTail(body.AsSpan(17), paddingLength, address, payload);
        return Seal(sessionId, packetId, body);
    }

    /// <summary>Opens a packet as a server does (client-to-server layout); null when it fails to authenticate or parse.</summary>
    public Sip022UdpMessage? OpenClient(ReadOnlySpan<byte> packet) => Open(packet, serverLayout: false);

    /// <summary>Opens a packet as a client does (server-to-client layout); null when it fails to authenticate or parse.</summary>
    public Sip022UdpMessage? OpenServer(ReadOnlySpan<byte> packet) => Open(packet, serverLayout: true);

    /// <summary>
    /// HChaCha20 (draft-irtf-cfrg-xchacha § 2.2): the ChaCha20 state from the constants, the key and the 16-byte nonce,
    /// 20 rounds with no final addition, and the first and last rows out, little-endian.
    /// </summary>
    public static byte[] HChaCha20(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce)
    {
        Assert.Equal(32, key.Length);
        Assert.Equal(16, nonce.Length);
        Span<uint> s = stackalloc uint[16];
        s[0] = 0x61707865; // "expand 32-byte k"
        s[1] = 0x3320646e;
        s[2] = 0x79622d32;
        s[3] = 0x6b206574;
        for (var i = 0; i < 8; i++)
        {
            s[4 + i] = BinaryPrimitives.ReadUInt32LittleEndian(key[(4 * i)..]);
        }

        for (var i = 0; i < 4; i++)
        {
            s[12 + i] = BinaryPrimitives.ReadUInt32LittleEndian(nonce[(4 * i)..]);
        }

        for (var round = 0; round < 10; round++)
        {
            QuarterRound(s, 0, 4, 8, 12); // columns
            QuarterRound(s, 1, 5, 9, 13);
            QuarterRound(s, 2, 6, 10, 14);
            QuarterRound(s, 3, 7, 11, 15);
            QuarterRound(s, 0, 5, 10, 15); // diagonals
            QuarterRound(s, 1, 6, 11, 12);
            QuarterRound(s, 2, 7, 8, 13);
            QuarterRound(s, 3, 4, 9, 14);
        }

        var output = new byte[32];
        for (var i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(4 * i), s[i]);
            BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(16 + (4 * i)), s[12 + i]);
        }

        return output;
    }

    /// <summary>
    /// AEAD_XChaCha20_Poly1305 (draft-irtf-cfrg-xchacha § 2.3): subkey = HChaCha20(key, nonce[0..16)), then
    /// ChaCha20-Poly1305 (RFC 8439) with nonce <c>00000000 | nonce[16..24)</c>. Returns ciphertext | tag.
    /// </summary>
    public static byte[] XChaCha20Poly1305Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> plaintext)
    {
        using var aead = new ChaCha20Poly1305(HChaCha20(key, nonce[..16]));
        var sealedText = new byte[plaintext.Length + TagSize];
        aead.Encrypt(InnerNonce(nonce), plaintext, sealedText.AsSpan(0, plaintext.Length), sealedText.AsSpan(plaintext.Length), associatedData);
        return sealedText;
    }

    /// <summary>The inverse of <see cref="XChaCha20Poly1305Seal"/>; null when the tag does not verify.</summary>
    public static byte[]? XChaCha20Poly1305Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> sealedText)
    {
        if (sealedText.Length < TagSize)
        {
            return null;
        }

        using var aead = new ChaCha20Poly1305(HChaCha20(key, nonce[..16]));
        var plaintext = new byte[sealedText.Length - TagSize];
        try
        {
            aead.Decrypt(InnerNonce(nonce), sealedText[..plaintext.Length], sealedText[plaintext.Length..], plaintext, associatedData);
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }

    /// <summary>§ 2.2: BLAKE3 derive_key(context, PSK || session ID), truncated to the key length (BLAKE3 output is a prefix-stable XOF).</summary>
    public byte[] SessionSubkey(ReadOnlySpan<byte> sessionId)
    {
        var digest = new Blake3Digest(256);
        digest.Init(Blake3Parameters.Context(Encoding.ASCII.GetBytes(SubkeyContext)));
        digest.BlockUpdate(_psk, 0, _psk.Length);
        var id = sessionId.ToArray();
        digest.BlockUpdate(id, 0, id.Length);
        var output = new byte[32];
        digest.DoFinal(output, 0);
        return output[.._psk.Length];
    }

    private static void QuarterRound(Span<uint> s, int a, int b, int c, int d)
    {
        s[a] += s[b];
        s[d] = BitOperations.RotateLeft(s[d] ^ s[a], 16);
        s[c] += s[d];
        s[b] = BitOperations.RotateLeft(s[b] ^ s[c], 12);
        s[a] += s[b];
        s[d] = BitOperations.RotateLeft(s[d] ^ s[a], 8);
        s[c] += s[d];
        s[b] = BitOperations.RotateLeft(s[b] ^ s[c], 7);
    }

    private static byte[] InnerNonce(ReadOnlySpan<byte> nonce) => [0, 0, 0, 0, .. nonce[16..24]];

    /// <summary><c>padding length u16be | padding | address | payload</c>.</summary>
    private static void WriteTail(Span<byte> tail, int paddingLength, ReadOnlySpan<byte> address, ReadOnlySpan<byte> payload)
    {
        BinaryPrimitives.WriteUInt16BigEndian(tail, checked((ushort)paddingLength));
        RandomNumberGenerator.Fill(tail.Slice(2, paddingLength));
        address.CopyTo(tail[(2 + paddingLength)..]);
        payload.CopyTo(tail[(2 + paddingLength + address.Length)..]);
    }

    /// <summary>The length of a SOCKS5 address at the start of <paramref name="data"/>, or -1.</summary>
    private static int AddressLength(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return -1;
        }

        var length = data[0] switch
        {
            1 => 1 + 4 + 2,
            4 => 1 + 16 + 2,
            3 when data.Length > 1 => 1 + 1 + data[1] + 2,
            _ => -1,
        };
        return length <= data.Length ? length : -1;
    }

    private byte[] Seal(ulong sessionId, ulong packetId, byte[] body)
    {
        var header = new byte[SeparateHeaderSize];
        BinaryPrimitives.WriteUInt64BigEndian(header, sessionId);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), packetId);
        if (_chacha)
        {
            var nonce = RandomNumberGenerator.GetBytes(XNonceSize);
            return [.. nonce, .. XChaCha20Poly1305Seal(_psk, nonce, [], [.. header, .. body])];
        }

        var packet = new byte[SeparateHeaderSize + body.Length + TagSize];
        using (var block = Aes.Create())
        {
            block.Key = _psk;
            block.EncryptEcb(header, packet.AsSpan(0, SeparateHeaderSize), PaddingMode.None);
        }

        using var gcm = new AesGcm(SessionSubkey(header.AsSpan(0, 8)), TagSize);
        gcm.Encrypt(header.AsSpan(4, 12), body, packet.AsSpan(SeparateHeaderSize, body.Length), packet.AsSpan(SeparateHeaderSize + body.Length));
        return packet;
    }

    private Sip022UdpMessage? Open(ReadOnlySpan<byte> packet, bool serverLayout)
    {
        byte[] header;
        byte[] body;
        if (_chacha)
        {
            if (packet.Length < XNonceSize + SeparateHeaderSize + TagSize)
            {
                return null;
            }

            var plain = XChaCha20Poly1305Open(_psk, packet[..XNonceSize], [], packet[XNonceSize..]);
            if (plain is null)
            {
                return null;
            }

            header = plain[..SeparateHeaderSize];
            body = plain[SeparateHeaderSize..];
        }
        else
        {
            if (packet.Length < SeparateHeaderSize + TagSize)
            {
                return null;
            }

            header = new byte[SeparateHeaderSize];
            using (var block = Aes.Create())
            {
                block.Key = _psk;
                block.DecryptEcb(packet[..SeparateHeaderSize], header, PaddingMode.None);
            }

            body = new byte[packet.Length - SeparateHeaderSize - TagSize];
            using var gcm = new AesGcm(SessionSubkey(header.AsSpan(0, 8)), TagSize);
            try
            {
                gcm.Decrypt(header.AsSpan(4, 12), packet[SeparateHeaderSize..^TagSize], packet[^TagSize..], body);
            }
            catch (AuthenticationTagMismatchException)
            {
                return null;
            }
        }

        return Parse(header, body, serverLayout);
    }

    private static Sip022UdpMessage? Parse(byte[] header, byte[] body, bool serverLayout)
    {
        var fixedSize = 1 + 8 + (serverLayout ? 8 : 0) + 2;
        if (body.Length < fixedSize)
        {
            return null;
        }

        ulong? clientSessionId = serverLayout ? BinaryPrimitives.ReadUInt64BigEndian(body.AsSpan(9)) : null;
        int paddingLength = BinaryPrimitives.ReadUInt16BigEndian(body.AsSpan(fixedSize - 2));
        var addressStart = fixedSize + paddingLength;
        if (addressStart > body.Length)
        {
            return null;
        }

        var addressLength = AddressLength(body.AsSpan(addressStart));
        if (addressLength < 0)
        {
            return null;
        }

        return new Sip022UdpMessage(
            BinaryPrimitives.ReadUInt64BigEndian(header),
            BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)),
            body[0],
            BinaryPrimitives.ReadUInt64BigEndian(body.AsSpan(1)),
            clientSessionId,
            paddingLength,
            body[addressStart..(addressStart + addressLength)],
            body[(addressStart + addressLength)..]);
    }
}
