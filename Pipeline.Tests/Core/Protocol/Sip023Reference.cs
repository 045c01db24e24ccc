using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Parameters;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// SIP023, Shadowsocks 2022 Extensible Identity Headers (shadowsocks-specs 2022-2), written in the test from the
/// specification alone, independently of the production code: identity headers built by a client and read by an
/// identity processor (a relay) or a multi-user server, for TCP and UDP. Everything after the identity headers is
/// plain SIP022 under the user's key, for which it leans on <see cref="Sip022Reference"/> and
/// <see cref="Sip022UdpReference"/>. Only the AES methods have identity headers; every key is the method's key size.
/// <code>
/// keys            : a client holds iPSK0 : iPSK1 : ... : iPSK(n-1) : uPSK; "next key" of iPSKi is iPSK(i+1), and of
///                   the last iPSK the uPSK
/// user hash       : BLAKE3 hash(next key)[0..16)
///
/// TCP request     : salt | EIH0 | ... | EIH(n-1) | seal(fixed header) | seal(variable header) | ...   (SIP022 under uPSK)
///   EIHi          : AES-ECB_identitySubkey(user hash of iPSKi's next key), one 16-byte block
///   identitySubkey: BLAKE3 derive_key("shadowsocks 2022 identity subkey", iPSKi || salt), key size bytes
/// TCP response    : plain SIP022 under uPSK, no identity header
///
/// UDP request     : AES-ECB_iPSK0(session ID 8 | packet ID 8) | EIH0 | ... | EIH(n-1) | AES-GCM body + tag (SIP022 under uPSK)
///   EIHi          : AES-ECB_iPSKi(user hash of iPSKi's next key XOR separate header plaintext), the iPSK itself as key
///   processor     : decrypts the separate header and its EIH with its iPSK, finds the next key by the hash, drops its
///                   EIH and re-encrypts the separate header under the next key (the next iPSK, or the uPSK at the server)
/// UDP response    : plain SIP022 under uPSK (separate header under uPSK), no identity header
/// </code>
/// Lookups report "no match" as null; they never throw for bad input, so tests can assert refusals.
/// </summary>
internal static class Sip023Reference
{
    /// <summary>An identity header is one AES block; the user hash is its size.</summary>
    public const int IdentityHeaderSize = 16;

    /// <summary>UDP separate header: session ID (8) | packet ID (8), one AES block.</summary>
    public const int SeparateHeaderSize = 16;

    /// <summary>The spec's derive_key context for TCP identity subkeys.</summary>
    private const string IdentitySubkeyContext = "shadowsocks 2022 identity subkey";

    /// <summary>The two methods with identity headers (the AES ones).</summary>
    public static IEnumerable<string> Methods { get; } = ["2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm"];

    /// <summary>Key (and salt) size of an AES 2022 method; anything else has no identity headers.</summary>
    public static int KeySize(string method) => method switch
    {
        "2022-blake3-aes-128-gcm" => 16,
        "2022-blake3-aes-256-gcm" => 32,
        _ => throw new ArgumentException($"SIP023 identity headers exist only for the AES 2022 methods, not {method}", nameof(method)),
    };

    /// <summary>BLAKE3 in plain hash mode (no key, no context), read to <paramref name="length"/> bytes.</summary>
    public static byte[] Hash(ReadOnlySpan<byte> input, int length = 32)
    {
        var digest = new Blake3Digest(256); // bits; OutputFinal reads the XOF to the buffer's length
        var bytes = input.ToArray();
        digest.BlockUpdate(bytes, 0, bytes.Length);
        var output = new byte[length];
        digest.OutputFinal(output);
        return output;
    }

    /// <summary>BLAKE3 derive_key(context, material), read to <paramref name="length"/> bytes.</summary>
    public static byte[] DeriveKey(string context, ReadOnlySpan<byte> material, int length)
    {
        var digest = new Blake3Digest(256); // bits; OutputFinal reads the XOF to the buffer's length
        digest.Init(Blake3Parameters.Context(Encoding.ASCII.GetBytes(context)));
        var bytes = material.ToArray();
        digest.BlockUpdate(bytes, 0, bytes.Length);
        var output = new byte[length];
        digest.OutputFinal(output);
        return output;
    }

    /// <summary>The first 16 bytes of BLAKE3 hash(key): how the layer before names this key.</summary>
    public static byte[] UserHash(ReadOnlySpan<byte> key) => Hash(key)[..IdentityHeaderSize];

    /// <summary>TCP: derive_key("shadowsocks 2022 identity subkey", iPSK || salt), the key's size.</summary>
    public static byte[] IdentitySubkey(ReadOnlySpan<byte> identityKey, ReadOnlySpan<byte> salt) =>
        DeriveKey(IdentitySubkeyContext, [.. identityKey, .. salt], identityKey.Length);

    /// <summary>One AES block (AES-128 or AES-256 by the key's length), ECB, no padding.</summary>
    public static byte[] EncryptBlock(ReadOnlySpan<byte> key, ReadOnlySpan<byte> block)
    {
        using var aes = Aes.Create();
        aes.Key = key.ToArray();
        return aes.EncryptEcb(block, PaddingMode.None);
    }

    /// <summary>The inverse of <see cref="EncryptBlock"/>.</summary>
    public static byte[] DecryptBlock(ReadOnlySpan<byte> key, ReadOnlySpan<byte> block)
    {
        using var aes = Aes.Create();
        aes.Key = key.ToArray();
        return aes.DecryptEcb(block, PaddingMode.None);
    }

    /// <summary>The next key of each identity key: the following iPSK, and the uPSK for the last.</summary>
    private static byte[] NextKey(IReadOnlyList<byte[]> identityKeys, byte[] userKey, int i) =>
        i + 1 < identityKeys.Count ? identityKeys[i + 1] : userKey;

    private static void CheckKeys(IReadOnlyList<byte[]> identityKeys, byte[] userKey)
    {
        if (identityKeys.Count == 0)
        {
            throw new ArgumentException("no identity key: that is plain SIP022", nameof(identityKeys));
        }

        if (userKey.Length is not (16 or 32) || identityKeys.Any(k => k.Length != userKey.Length))
        {
            throw new ArgumentException("every key must be 16 or 32 bytes, all of one size", nameof(identityKeys));
        }
    }

    // --- TCP ---

    /// <summary>Client role: <c>EIH0 | ... | EIH(n-1)</c> for a request with <paramref name="salt"/>.</summary>
    public static byte[] TcpIdentityHeaders(IReadOnlyList<byte[]> identityKeys, byte[] userKey, ReadOnlySpan<byte> salt)
    {
        CheckKeys(identityKeys, userKey);
        var headers = new byte[identityKeys.Count * IdentityHeaderSize];
        for (var i = 0; i < identityKeys.Count; i++)
        {
            EncryptBlock(IdentitySubkey(identityKeys[i], salt), UserHash(NextKey(identityKeys, userKey, i)))
                .CopyTo(headers, i * IdentityHeaderSize);
        }

        return headers;
    }

    /// <summary>
    /// Client role: a SIP022 request as <see cref="Sip022Reference.EncodeRequest"/> made it (under the uPSK), with the
    /// identity headers put between its salt and its first chunk.
    /// </summary>
    public static byte[] WithTcpIdentityHeaders(byte[] request, IReadOnlyList<byte[]> identityKeys, byte[] userKey)
    {
        var saltSize = userKey.Length;
        var salt = request.AsSpan(0, saltSize);
        return [.. salt, .. TcpIdentityHeaders(identityKeys, userKey, salt), .. request.AsSpan(saltSize)];
    }

    /// <summary>
    /// Processor or server role, one layer: decrypts <paramref name="identityHeader"/> with the subkey of
    /// <paramref name="identityKey"/> and the salt and returns the candidate whose key it names, or null.
    /// </summary>
    public static (string Name, byte[] Key)? FindTcp(
        ReadOnlySpan<byte> identityKey, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> identityHeader, IEnumerable<(string Name, byte[] Key)> candidates)
    {
        var hash = DecryptBlock(IdentitySubkey(identityKey, salt), identityHeader[..IdentityHeaderSize]);
        return Find(hash, candidates);
    }

    /// <summary>
    /// Server role on a socket, through <paramref name="layers"/> identity layers (one for a lone server; more when the
    /// test also plays the relays before it): reads the salt, then one identity header per layer, each of which must
    /// name the next layer's iPSK, the last a user; then the SIP022 request under that user's key. Returns the user's
    /// name, the SIP022 end (to answer with) and the request. Throws <see cref="InvalidDataException"/> when a header
    /// names no one, otherwise like <see cref="Sip022Reference.ReadRequestAsync(Socket, CancellationToken)"/>.
    /// </summary>
    public static async Task<(string User, Sip022Reference Server, (byte Type, long Timestamp, byte[] Address, int PaddingLength, byte[] InitialPayload) Request)> ReadTcpRequestAsync(
        Socket socket, string method, IReadOnlyList<byte[]> layers, IReadOnlyList<(string Name, byte[] Key)> users, CancellationToken cancellationToken)
    {
        var keySize = KeySize(method);
        var salt = await ReadExactlyAsync(socket, keySize, cancellationToken);
        (string Name, byte[] Key)? found = null;
        for (var i = 0; i < layers.Count; i++)
        {
            var header = await ReadExactlyAsync(socket, IdentityHeaderSize, cancellationToken);
            IEnumerable<(string Name, byte[] Key)> next = i + 1 < layers.Count ? [($"iPSK{i + 1}", layers[i + 1])] : users;
            found = FindTcp(layers[i], salt, header, next)
                ?? throw new InvalidDataException($"identity header {i} names no {(i + 1 < layers.Count ? $"iPSK{i + 1}" : "user")}: {Convert.ToHexString(header)}");
        }

        var (user, key) = found ?? throw new ArgumentException("no identity layer", nameof(layers));
        var server = new Sip022Reference(method, key);
        try
        {
            return (user, server, await server.ReadRequestAsync(socket, salt, cancellationToken));
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    // --- UDP ---

    /// <summary>Session ID | packet ID, big-endian: the separate header's plaintext.</summary>
    public static byte[] SeparateHeader(ulong sessionId, ulong packetId)
    {
        var header = new byte[SeparateHeaderSize];
        BinaryPrimitives.WriteUInt64BigEndian(header, sessionId);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), packetId);
        return header;
    }

    /// <summary>Client role: <c>EIH0 | ... | EIH(n-1)</c> for a packet whose separate header is <paramref name="separateHeader"/> (plaintext).</summary>
    public static byte[] UdpIdentityHeaders(IReadOnlyList<byte[]> identityKeys, byte[] userKey, ReadOnlySpan<byte> separateHeader)
    {
        CheckKeys(identityKeys, userKey);
        var headers = new byte[identityKeys.Count * IdentityHeaderSize];
        for (var i = 0; i < identityKeys.Count; i++)
        {
            var plaintext = UserHash(NextKey(identityKeys, userKey, i));
            for (var j = 0; j < IdentityHeaderSize; j++)
            {
                plaintext[j] ^= separateHeader[j];
            }

            EncryptBlock(identityKeys[i], plaintext).CopyTo(headers, i * IdentityHeaderSize);
        }

        return headers;
    }

    /// <summary>
    /// Client role: a client-to-server packet with identity headers. The body is sealed as SIP022 under the uPSK
    /// (<see cref="Sip022UdpReference.SealClient"/>); the separate header is then encrypted under the first iPSK and
    /// the identity headers put after it.
    /// </summary>
    public static byte[] SealUdpClient(
        string method, IReadOnlyList<byte[]> identityKeys, byte[] userKey, ulong sessionId, ulong packetId, ReadOnlySpan<byte> address, ReadOnlySpan<byte> payload,
        long? timestamp = null, int paddingLength = 0, byte type = Sip022UdpReference.ClientType)
    {
        var plain = new Sip022UdpReference(method, userKey).SealClient(sessionId, packetId, address, payload, timestamp, paddingLength, type);
        var header = SeparateHeader(sessionId, packetId);
        return [.. EncryptBlock(identityKeys[0], header), .. UdpIdentityHeaders(identityKeys, userKey, header), .. plain.AsSpan(SeparateHeaderSize)];
    }

    /// <summary>
    /// Identity processor (or server) role, one layer: decrypts the separate header and the first identity header with
    /// <paramref name="identityKey"/>, finds the candidate the hash names, drops that identity header and re-encrypts
    /// the separate header under the candidate's key. Null when the packet is too short or names no candidate.
    /// </summary>
    public static (string Name, byte[] Key, byte[] Packet)? ProcessUdp(
        ReadOnlySpan<byte> packet, ReadOnlySpan<byte> identityKey, IEnumerable<(string Name, byte[] Key)> candidates)
    {
        if (packet.Length < SeparateHeaderSize + IdentityHeaderSize)
        {
            return null;
        }

        var header = DecryptBlock(identityKey, packet[..SeparateHeaderSize]);
        var hash = DecryptBlock(identityKey, packet.Slice(SeparateHeaderSize, IdentityHeaderSize));
        for (var j = 0; j < IdentityHeaderSize; j++)
        {
            hash[j] ^= header[j];
        }

        if (Find(hash, candidates) is not { } found)
        {
            return null;
        }

        return (found.Name, found.Key, [.. EncryptBlock(found.Key, header), .. packet[(SeparateHeaderSize + IdentityHeaderSize)..]]);
    }

    /// <summary>
    /// Server role, through <paramref name="layers"/> identity layers (the relays' iPSKs first, the server's last):
    /// each must name the next layer's iPSK, the last a user; then the rest opens as a SIP022 client packet under that
    /// user's key. Null when a layer names no one or the packet does not open.
    /// </summary>
    public static (string User, byte[] Key, Sip022UdpMessage Message)? OpenUdpClient(
        string method, ReadOnlySpan<byte> packet, IReadOnlyList<byte[]> layers, IReadOnlyList<(string Name, byte[] Key)> users)
    {
        var current = packet.ToArray();
        (string Name, byte[] Key, byte[] Packet)? step = null;
        for (var i = 0; i < layers.Count; i++)
        {
            IEnumerable<(string Name, byte[] Key)> next = i + 1 < layers.Count ? [($"iPSK{i + 1}", layers[i + 1])] : users;
            step = ProcessUdp(current, layers[i], next);
            if (step is null)
            {
                return null;
            }

            current = step.Value.Packet;
        }

        if (step is not { } last)
        {
            throw new ArgumentException("no identity layer", nameof(layers));
        }

        return new Sip022UdpReference(method, last.Key).OpenClient(current) is { } message ? (last.Name, last.Key, message) : null;
    }

    private static (string Name, byte[] Key)? Find(byte[] hash, IEnumerable<(string Name, byte[] Key)> candidates)
    {
        foreach (var candidate in candidates)
        {
            if (UserHash(candidate.Key).AsSpan().SequenceEqual(hash))
            {
                return candidate;
            }
        }

        return null;
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        for (var offset = 0; offset < count;)
        {
            var received = await socket.ReceiveAsync(buffer.AsMemory(offset), SocketFlags.None, cancellationToken);
            if (received == 0)
            {
                throw new IOException($"the peer closed with {count - offset} of {count} bytes missing");
            }

            offset += received;
        }

        return buffer;
    }
}
