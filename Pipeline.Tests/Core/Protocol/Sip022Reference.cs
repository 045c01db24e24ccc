using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Parameters;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// A Shadowsocks 2022 (SIP022, shadowsocks-specs 2022-1) TCP codec written in the test from the specification alone,
/// independent of the production codec, so tests can play either peer and craft good and bad streams. One instance
/// is one end of one connection: what it sends is sealed under its own salt's subkey, what it receives is opened
/// under the peer's salt's subkey, each direction with its own nonce counter.
/// <code>
/// request stream  : salt | seal(fixed header) | seal(variable header) | seal(length) | seal(payload) | ...
///   fixed header  : type=0 (1) | timestamp u64 BE (8) | variable header length u16 BE (2)
///   variable hdr  : ATYP | address | port u16 BE | padding length u16 BE | padding (0..900) | initial payload
/// response stream : salt | seal(type=1 (1) | timestamp u64 BE (8) | request salt (16/32) | length u16 BE (2)) | seal(payload) | seal(length) | ...
/// seal            : AEAD under BLAKE3 derive_key("shadowsocks 2022 session subkey", PSK || salt), 12-byte
///                   little-endian counter nonce from 0, incremented after every seal or open; 16-byte tag
/// </code>
/// The decoders report what they found and check only what they need to go on (authentication, lengths, the
/// padding staying inside its chunk); tests assert the rest.
/// </summary>
internal sealed class Sip022Reference : IDisposable
{
    public const byte RequestType = 0;
    public const byte ResponseType = 1;

    /// <summary>AES-GCM and ChaCha20-Poly1305 tag length.</summary>
    public const int TagSize = 16;

    /// <summary>SIP022 § 3.1.3 MaxPaddingLength.</summary>
    public const int MaxPadding = 900;

    /// <summary>SIP022 § 3.1.2: a payload chunk holds at most 0xFFFF bytes.</summary>
    public const int MaxPayload = 0xFFFF;

    /// <summary>Request fixed header: type (1), timestamp (8), variable header length (2).</summary>
    public const int RequestFixedHeaderSize = 1 + 8 + 2;

    private const string SubkeyContext = "shadowsocks 2022 session subkey";
    private const int NonceSize = 12;

    private readonly bool _chacha;
    private readonly byte[] _psk;
    private readonly byte[] _sendNonce = new byte[NonceSize];
    private readonly byte[] _receiveNonce = new byte[NonceSize];
    private AesGcm? _sendAes;
    private ChaCha20Poly1305? _sendChaCha;
    private AesGcm? _receiveAes;
    private ChaCha20Poly1305? _receiveChaCha;

    public Sip022Reference(string method, byte[] psk)
    {
        KeySize = KeySizeOf(method);
        _chacha = method == "2022-blake3-chacha20-poly1305";
        if (psk.Length != KeySize)
        {
            throw new ArgumentException($"{method} takes a {KeySize}-byte PSK, not {psk.Length}", nameof(psk));
        }

        _psk = psk;
    }

    /// <summary>Key and salt length of the method.</summary>
    public int KeySize { get; }

    /// <summary>The salt of the stream this end sends (null until it starts sending).</summary>
    public byte[]? SendSalt { get; private set; }

    /// <summary>The salt of the stream this end receives (null until the peer's salt is read).</summary>
    public byte[]? ReceiveSalt { get; private set; }

    /// <summary>Response fixed header: type (1), timestamp (8), request salt (key size), length (2).</summary>
    public int ResponseFixedHeaderSize => 1 + 8 + KeySize + 2;

    /// <summary>Unix seconds now.</summary>
    public static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public static int KeySizeOf(string method) => method switch
    {
        "2022-blake3-aes-128-gcm" => 16,
        "2022-blake3-aes-256-gcm" => 32,
        "2022-blake3-chacha20-poly1305" => 32,
        _ => throw new ArgumentException($"not a SIP022 method: {method}", nameof(method)),
    };

    /// <summary>BLAKE3 <c>derive_key</c>(2022 context, PSK || salt), read to the key length (a prefix of the XOF output).</summary>
    public static byte[] SessionSubkey(ReadOnlySpan<byte> psk, ReadOnlySpan<byte> salt)
    {
        var digest = new Blake3Digest(256); // size in bits
        digest.Init(Blake3Parameters.Context(Encoding.ASCII.GetBytes(SubkeyContext)));
        byte[] material = [.. psk, .. salt];
        digest.BlockUpdate(material, 0, material.Length);
        var subkey = new byte[psk.Length];
        digest.OutputFinal(subkey);
        return subkey;
    }

    /// <summary>The SOCKS5 address of an IP endpoint: ATYP 1 or 4, address, port (big-endian).</summary>
    public static byte[] Address(IPEndPoint endPoint)
    {
        var ip = endPoint.Address.GetAddressBytes();
        return [(byte)(ip.Length == 4 ? 1 : 4), .. ip, (byte)(endPoint.Port >> 8), (byte)endPoint.Port];
    }

    /// <summary>The SOCKS5 address of a name: ATYP 3, length, name, port (big-endian).</summary>
    public static byte[] Address(string host, int port)
    {
        var name = Encoding.ASCII.GetBytes(host);
        return [3, (byte)name.Length, .. name, (byte)(port >> 8), (byte)port];
    }

    /// <summary>Starts the stream this end sends under <paramref name="salt"/> (random if null); returns the salt.</summary>
    public byte[] BeginSending(byte[]? salt = null)
    {
        if (SendSalt is not null)
        {
            throw new InvalidOperationException("this end already sends");
        }

        salt ??= RandomNumberGenerator.GetBytes(KeySize);
        if (salt.Length != KeySize)
        {
            throw new ArgumentException($"salt must be {KeySize} bytes", nameof(salt));
        }

        SendSalt = salt;
        var subkey = SessionSubkey(_psk, salt);
        if (_chacha)
        {
            _sendChaCha = new ChaCha20Poly1305(subkey);
        }
        else
        {
            _sendAes = new AesGcm(subkey, TagSize);
        }

        return salt;
    }

    /// <summary>Starts the stream this end receives, whose salt the peer sent.</summary>
    public void BeginReceiving(ReadOnlySpan<byte> salt)
    {
        if (ReceiveSalt is not null)
        {
            throw new InvalidOperationException("this end already receives");
        }

        ReceiveSalt = salt.ToArray();
        var subkey = SessionSubkey(_psk, salt);
        if (_chacha)
        {
            _receiveChaCha = new ChaCha20Poly1305(subkey);
        }
        else
        {
            _receiveAes = new AesGcm(subkey, TagSize);
        }
    }

    /// <summary>One AEAD chunk: ciphertext and tag under the current send nonce, which then moves on by one.</summary>
    public byte[] Seal(ReadOnlySpan<byte> plaintext)
    {
        var sealedChunk = new byte[plaintext.Length + TagSize];
        var ciphertext = sealedChunk.AsSpan(0, plaintext.Length);
        var tag = sealedChunk.AsSpan(plaintext.Length);
        if (_sendChaCha is not null)
        {
            _sendChaCha.Encrypt(_sendNonce, plaintext, ciphertext, tag);
        }
        else
        {
            (_sendAes ?? throw new InvalidOperationException("BeginSending first")).Encrypt(_sendNonce, plaintext, ciphertext, tag);
        }

        Increment(_sendNonce);
        return sealedChunk;
    }

    /// <summary>Opens one AEAD chunk (ciphertext and tag) under the current receive nonce, which then moves on by one.</summary>
    /// <exception cref="AuthenticationTagMismatchException">The chunk does not authenticate.</exception>
    public byte[] Open(ReadOnlySpan<byte> sealedChunk)
    {
        var plaintext = new byte[sealedChunk.Length - TagSize];
        var ciphertext = sealedChunk[..plaintext.Length];
        var tag = sealedChunk[plaintext.Length..];
        if (_receiveChaCha is not null)
        {
            _receiveChaCha.Decrypt(_receiveNonce, ciphertext, tag, plaintext);
        }
        else
        {
            (_receiveAes ?? throw new InvalidOperationException("BeginReceiving first")).Decrypt(_receiveNonce, ciphertext, tag, plaintext);
        }

        Increment(_receiveNonce);
        return plaintext;
    }

    /// <summary>
    /// Client role: the request's first bytes, <c>salt | seal(fixed header) | seal(variable header)</c>, to be sent in
    /// one write. The padding is random bytes; the defaults make a well-formed request.
    /// </summary>
    /// <param name="declaredPaddingLength">The padding length written in the header, if not the real one (to make it lie).</param>
    public byte[] EncodeRequest(
        ReadOnlySpan<byte> address, long timestamp, int paddingLength, ReadOnlySpan<byte> initialPayload,
        byte type = RequestType, byte[]? salt = null, int? declaredPaddingLength = null)
    {
        var saltBytes = BeginSending(salt);
        byte[] variable =
        [
            .. address,
            (byte)((declaredPaddingLength ?? paddingLength) >> 8), (byte)(declaredPaddingLength ?? paddingLength),
            .. RandomNumberGenerator.GetBytes(paddingLength),
            .. initialPayload,
        ];
        var fixedHeader = new byte[RequestFixedHeaderSize];
        fixedHeader[0] = type;
        BinaryPrimitives.WriteUInt64BigEndian(fixedHeader.AsSpan(1), (ulong)timestamp);
        BinaryPrimitives.WriteUInt16BigEndian(fixedHeader.AsSpan(9), checked((ushort)variable.Length));
        return [.. saltBytes, .. Seal(fixedHeader), .. Seal(variable)];
    }

    /// <summary>
    /// Server role: the response's first bytes, <c>salt | seal(type | timestamp | request salt | length) | seal(payload)</c>,
    /// and, if the payload is longer than a chunk, the rest as length and payload chunks.
    /// </summary>
    public byte[] EncodeResponse(long timestamp, ReadOnlySpan<byte> requestSalt, ReadOnlySpan<byte> payload, byte type = ResponseType, byte[]? salt = null)
    {
        var saltBytes = BeginSending(salt);
        var first = payload[..Math.Min(payload.Length, MaxPayload)];
        var header = new byte[1 + 8 + requestSalt.Length + 2];
        header[0] = type;
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(1), (ulong)timestamp);
        requestSalt.CopyTo(header.AsSpan(9));
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(9 + requestSalt.Length), (ushort)first.Length);
        return [.. saltBytes, .. Seal(header), .. Seal(first), .. EncodeChunks(payload[first.Length..])];
    }

    /// <summary>Either role, after the header: <c>seal(length u16 BE) | seal(payload)</c> per piece of at most 0xFFFF bytes.</summary>
    public byte[] EncodeChunks(ReadOnlySpan<byte> payload)
    {
        var output = new MemoryStream();
        Span<byte> length = stackalloc byte[2];
        while (!payload.IsEmpty)
        {
            var piece = payload[..Math.Min(payload.Length, MaxPayload)];
            BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)piece.Length);
            output.Write(Seal(length));
            output.Write(Seal(piece));
            payload = payload[piece.Length..];
        }

        return output.ToArray();
    }

    /// <summary>
    /// Server role: reads the peer's salt and both request header chunks. Throws <see cref="IOException"/> if the
    /// peer closes early, <see cref="AuthenticationTagMismatchException"/> if a chunk does not authenticate and
    /// <see cref="InvalidDataException"/> if the address or the padding runs past the variable header.
    /// </summary>
    public async Task<(byte Type, long Timestamp, byte[] Address, int PaddingLength, byte[] InitialPayload)> ReadRequestAsync(
        Socket socket, CancellationToken cancellationToken) =>
        await ReadRequestAsync(socket, await ReadExactlyAsync(socket, KeySize, cancellationToken), cancellationToken);

    /// <summary>
    /// Server role, the salt already read (with whatever followed it before the first chunk, e.g. SIP023 identity
    /// headers): reads both request header chunks. Throws like <see cref="ReadRequestAsync(Socket, CancellationToken)"/>.
    /// </summary>
    public async Task<(byte Type, long Timestamp, byte[] Address, int PaddingLength, byte[] InitialPayload)> ReadRequestAsync(
        Socket socket, byte[] salt, CancellationToken cancellationToken)
    {
        BeginReceiving(salt);
        var fixedHeader = Open(await ReadExactlyAsync(socket, RequestFixedHeaderSize + TagSize, cancellationToken));
        var type = fixedHeader[0];
        var timestamp = (long)BinaryPrimitives.ReadUInt64BigEndian(fixedHeader.AsSpan(1));
        var variableLength = BinaryPrimitives.ReadUInt16BigEndian(fixedHeader.AsSpan(9));
        var variable = Open(await ReadExactlyAsync(socket, variableLength + TagSize, cancellationToken));

        var addressLength = AddressLength(variable);
        if (addressLength + 2 > variable.Length)
        {
            throw new InvalidDataException($"the address ({addressLength} bytes) and padding length do not fit the {variable.Length}-byte variable header");
        }

        var paddingLength = BinaryPrimitives.ReadUInt16BigEndian(variable.AsSpan(addressLength));
        var paddingEnd = addressLength + 2 + paddingLength;
        if (paddingEnd > variable.Length)
        {
            throw new InvalidDataException($"padding of {paddingLength} runs past the {variable.Length}-byte variable header");
        }

        return (type, timestamp, variable[..addressLength], paddingLength, variable[paddingEnd..]);
    }

    /// <summary>
    /// Client role: reads the server's salt, the response header chunk and the payload chunk it announces. Throws
    /// like <see cref="ReadRequestAsync(Socket, CancellationToken)"/>.
    /// </summary>
    public async Task<(byte Type, long Timestamp, byte[] RequestSalt, byte[] Payload)> ReadResponseHeaderAsync(
        Socket socket, CancellationToken cancellationToken)
    {
        BeginReceiving(await ReadExactlyAsync(socket, KeySize, cancellationToken));
        var header = Open(await ReadExactlyAsync(socket, ResponseFixedHeaderSize + TagSize, cancellationToken));
        var type = header[0];
        var timestamp = (long)BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(1));
        var requestSalt = header[9..(9 + KeySize)];
        var length = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(9 + KeySize));
        var payload = Open(await ReadExactlyAsync(socket, length + TagSize, cancellationToken));
        return (type, timestamp, requestSalt, payload);
    }

    /// <summary>
    /// Either role, after the header: one length chunk and its payload chunk; null if the peer closed cleanly before
    /// a length chunk. Throws <see cref="IOException"/> on a close inside a chunk.
    /// </summary>
    public async Task<byte[]?> ReadChunkAsync(Socket socket, CancellationToken cancellationToken)
    {
        var sealedLength = new byte[2 + TagSize];
        var first = await socket.ReceiveAsync(sealedLength, SocketFlags.None, cancellationToken);
        if (first == 0)
        {
            return null;
        }

        await FillAsync(socket, sealedLength.AsMemory(first), cancellationToken);
        var length = BinaryPrimitives.ReadUInt16BigEndian(Open(sealedLength));
        return Open(await ReadExactlyAsync(socket, length + TagSize, cancellationToken));
    }

    public void Dispose()
    {
        _sendAes?.Dispose();
        _sendChaCha?.Dispose();
        _receiveAes?.Dispose();
        _receiveChaCha?.Dispose();
    }

    /// <summary>Length of the SOCKS5 address at the start of <paramref name="header"/> (ATYP, address, port).</summary>
    private static int AddressLength(byte[] header)
    {
        if (header.Length < 1)
        {
            throw new InvalidDataException("empty variable header");
        }

        return header[0] switch
        {
            1 => 1 + 4 + 2,
            4 => 1 + 16 + 2,
            3 when header.Length >= 2 => 1 + 1 + header[1] + 2,
            _ => throw new InvalidDataException($"bad ATYP {header[0]}"),
        };
    }

    /// <summary>The nonce as a 96-bit little-endian counter.</summary>
    private static void Increment(byte[] nonce)
    {
        for (var i = 0; i < nonce.Length; i++)
        {
            if (++nonce[i] != 0)
            {
                return;
            }
        }
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        await FillAsync(socket, buffer, cancellationToken);
        return buffer;
    }

    private static async Task FillAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            var received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (received == 0)
            {
                throw new IOException($"the peer closed with {buffer.Length} bytes of a chunk missing");
            }

            buffer = buffer[received..];
        }
    }
}
