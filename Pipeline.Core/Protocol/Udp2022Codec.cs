using System.Buffers.Binary;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// SIP022 UDP packets for one PSK: sealing and opening, in place, for both ends.
/// </summary>
/// <remarks>
/// <code>
/// AES methods:  | AES-ECB_psk(session ID 8 | packet ID u64 BE 8) | AEAD_subkey(body) | tag 16 |
///               subkey = BLAKE3 derive_key("shadowsocks 2022 session subkey", psk || session ID); nonce = header[4..16]
/// ChaCha20:     | nonce 24 | XChaCha20-Poly1305_psk(session ID | packet ID | body) | tag 16 |
///
/// body, client to server: type 0 | timestamp u64 BE | padding length u16 BE | padding | address header | data
/// body, server to client: type 1 | timestamp u64 BE | client session ID 8 | padding length | padding | address | data
/// </code>
/// Each side numbers its packets from zero in its own session; the receiver takes a packet ID once, in a sliding
/// window (<see cref="Caching.PacketIdWindow"/>), and only after the packet authenticated and its timestamp is within
/// 30 s. This end sends no padding. The payload (address header and data) sits at <see cref="PrefixSize"/> in the packet
/// buffer when sealing, and is found at the returned offset when opening.
/// <para>
/// SIP023 (AES methods): a client given an <see cref="IdentityChain"/> seals its separate header with the first
/// identity key and puts the identity headers between it and the body, whose keys come from the user's key (the PSK
/// here). A server given <see cref="ServerUsers"/> opens the separate header and the identity header with its identity
/// key (the PSK here), and runs each session, replies included, under the key of the user it names.
/// </para>
/// </remarks>
internal sealed class Udp2022Codec
{
    public const int TagSize = 16;

    private const int SeparateHeaderSize = 16;
    private const int XNonceSize = 24;

    /// <summary>Body offsets: type (1), timestamp (8), then the client's padding length, or the server's client session ID (8) and padding length.</summary>
    private const int ClientPaddingAt = 1 + 8;
    private const int ServerClientSessionAt = 1 + 8;
    private const int ServerPaddingAt = ServerClientSessionAt + 8;

    private readonly CipherInfo _cipher;
    private readonly byte[] _psk;
    private readonly TimeProvider _time;
    private readonly AesEcb? _headerCipher;
    private readonly bool _chacha;

    /// <summary>SIP023 client: the identity headers (and the first identity key, which seals the separate header).</summary>
    private readonly IdentityChain? _identities;

    /// <summary>SIP023 server: the users (each with a cipher under its key for the separate headers of its replies).</summary>
    private readonly ServerUsers? _users;

    /// <summary>The identity headers' bytes in a request packet: a client's chain, or the one header a multi-user server reads.</summary>
    private readonly int _requestIdentitySize;

    /// <summary>
    /// ChaCha20: XChaCha20-Poly1305 as HChaCha20 and then OpenSSL's ChaCha20-Poly1305 on this thread's re-keyed
    /// context (a .NET cipher object per packet cost about 4 µs a datagram in each process: bench/RESULTS.md); null where
    /// OpenSSL's is not loaded, and then the .NET construction.
    /// </summary>
    private readonly PacketAead? _xInner;

    /// <summary>AES methods: OpenSSL's AES-GCM of the key's size on a per-thread context, for a new session's first packet.</summary>
    private readonly PacketAead? _firstOpen;

    /// <summary>
    /// A codec under <paramref name="psk"/>; a SIP023 client's with its <paramref name="identities"/> (the PSK is then the
    /// user's key), a multi-user server's with its <paramref name="users"/> (the PSK is then its identity key).
    /// </summary>
    public Udp2022Codec(CipherInfo cipher, byte[] psk, TimeProvider time, IdentityChain? identities = null, ServerUsers? users = null)
    {
        if (!cipher.Is2022)
        {
            throw new ArgumentException($"{cipher.Name} is not a 2022 method.", nameof(cipher));
        }

        if (identities is not null && users is not null)
        {
            throw new ArgumentException("A codec is a client's (identities) or a server's (users), not both.", nameof(users));
        }

        _cipher = cipher;
        _psk = psk;
        _time = time;
        _chacha = cipher.Name == Aead2022Framing.ChaChaMethod;
        if (!_chacha)
        {
            _headerCipher = new AesEcb(psk);
            _identities = identities;
            _users = users;
            _requestIdentitySize = identities?.Size ?? (users is null ? 0 : AesBlock.Size);
            if (CipherCatalog.TryGet(cipher.KeySize == 16 ? "aes-128-gcm" : "aes-256-gcm", out var gcm) && PacketAead.TryGet(gcm, out var first))
            {
                _firstOpen = first;
            }
        }
        else if (identities is not null || users is not null)
        {
            throw new ArgumentException($"{cipher.Name} has no identity headers (SIP023: the 2022 AES methods only).", nameof(cipher));
        }
        else if (CipherCatalog.TryGet("chacha20-ietf-poly1305", out var inner) && PacketAead.TryGet(inner, out var packetAead))
        {
            _xInner = packetAead;
        }
    }

    /// <summary>Bytes in front of the payload in a packet this end seals (it sends no padding).</summary>
    public int PrefixSize(bool fromServer) => BodyAt(fromServer) + (fromServer ? ServerPaddingAt : ClientPaddingAt) + 2;

    /// <summary>A client's new session: a random session ID (and its AEAD, for AES methods).</summary>
    public Udp2022ClientSession NewClientSession()
    {
        var id = RandomId();
        return new Udp2022ClientSession(id, SessionAead(id, _psk));
    }

    /// <summary>Client: seals the payload at <c>packet[PrefixSize(false)..]</c>; returns the packet's length, 0 if the session has ended.</summary>
    public int SealFromClient(Udp2022ClientSession session, Span<byte> packet, int payloadLength)
    {
        lock (session.Gate)
        {
            if (session.Ended)
            {
                return 0;
            }

            var body = packet[BodyAt(fromServer: false)..];
            Aead2022Framing.WriteTypeAndTime(body, Aead2022Framing.RequestType, _time);
            BinaryPrimitives.WriteUInt16BigEndian(body[ClientPaddingAt..], 0);
            return Seal(packet, session.SessionId, session.NextPacketId++, session.Aead, ClientPaddingAt + 2 + payloadLength, fromServer: false, null);
        }
    }

    /// <summary>
    /// Server: seals the payload at <c>packet[PrefixSize(true)..]</c> as a reply in <paramref name="session"/>; returns the
    /// packet's length, 0 if the session has ended.
    /// </summary>
    public int SealFromServer(Udp2022ServerSession session, Span<byte> packet, int payloadLength)
    {
        lock (session.Gate)
        {
            if (session.Ended)
            {
                return 0;
            }

            var body = packet[BodyAt(fromServer: true)..];
            Aead2022Framing.WriteTypeAndTime(body, Aead2022Framing.ResponseType, _time);
            BinaryPrimitives.WriteUInt64BigEndian(body[ServerClientSessionAt..], session.ClientSessionId);
            BinaryPrimitives.WriteUInt16BigEndian(body[ServerPaddingAt..], 0);
            return Seal(packet, session.ServerSessionId, session.NextPacketId++, session.ServerAead, ServerPaddingAt + 2 + payloadLength, fromServer: true, session.User);
        }
    }

    /// <summary>
    /// Server: opens a client's packet in place. <paramref name="find"/> gives the live session of a client session ID
    /// (or null); for an unknown one a new session is made, and returned in <paramref name="session"/> only if the
    /// packet authenticates (the caller then keeps it). Sessions go by their ID, not by the address they come from, so
    /// a packet replayed from another address meets the same replay window. The payload is at <paramref name="offset"/>.
    /// </summary>
    public Udp2022Status OpenAtServer(Span<byte> packet, Func<ulong, Udp2022ServerSession?> find, out Udp2022ServerSession? session, out int offset, out int length)
    {
        session = null;
        offset = length = 0;
        if (packet.Length < PrefixSize(fromServer: false) + TagSize)
        {
            return Udp2022Status.TooShort;
        }

        Span<byte> header = stackalloc byte[SeparateHeaderSize];
        if (!TryIds(packet, header, fromServer: false, out var clientSessionId, out var packetId, out var body))
        {
            return Udp2022Status.AuthenticationFailed;
        }

        // A multi-user server: the identity header names the user, whose key the session runs under (none of ours: noise).
        var user = _users?.FindUdp(header, packet[SeparateHeaderSize..]);
        if (_users is not null && user is null)
        {
            return Udp2022Status.AuthenticationFailed;
        }

        var candidate = find(clientSessionId);
        if (candidate is not null && candidate.User != user)
        {
            return Udp2022Status.AuthenticationFailed; // another user's session ID: its keys are not this packet's
        }

        var made = candidate is null;
        var opened = _chacha;
        if (made)
        {
            // An unknown session ID is most often noise (or a probe): it is authenticated on this thread's context
            // before a session, its own cipher and its window are built for it.
            candidate = TryNewSession(packet, header, clientSessionId, body, user, ref opened);
            if (candidate is null)
            {
                return Udp2022Status.AuthenticationFailed;
            }
        }

        Udp2022Status status;
        lock (candidate!.Gate)
        {
            status = candidate.Ended ? Udp2022Status.SessionEnded
                : !(opened || OpenBody(packet, header, candidate.ClientAead, body)) ? Udp2022Status.AuthenticationFailed
                : body[0] != Aead2022Framing.RequestType ? Udp2022Status.InvalidHeader
                : !Aead2022Framing.HasFreshTime(body, _time) ? Udp2022Status.StaleTimestamp
                : !TryPadding(body, ClientPaddingAt, out var payloadStart) ? Udp2022Status.InvalidHeader
                : !candidate.ClientPackets.TryTake(packetId) ? Udp2022Status.Replayed
                : Found(packet, body, payloadStart, out offset, out length);
            if (status == Udp2022Status.Ok && made)
            {
                candidate.ServerAead = SessionAead(candidate.ServerSessionId, user?.Key ?? _psk);
            }
        }

        if (status != Udp2022Status.Ok)
        {
            if (made)
            {
                candidate.Dispose();
            }

            return status;
        }

        session = candidate;
        return Udp2022Status.Ok;
    }

    /// <summary>Client: opens a server's packet to <paramref name="session"/> in place; the payload is at <paramref name="offset"/>.</summary>
    public Udp2022Status OpenAtClient(Udp2022ClientSession session, Span<byte> packet, out int offset, out int length)
    {
        offset = length = 0;
        if (packet.Length < PrefixSize(fromServer: true) + TagSize)
        {
            return Udp2022Status.TooShort;
        }

        Span<byte> header = stackalloc byte[SeparateHeaderSize];
        if (!TryIds(packet, header, fromServer: true, out var serverSessionId, out var packetId, out var body))
        {
            return Udp2022Status.AuthenticationFailed;
        }

        lock (session.Gate)
        {
            if (session.Ended)
            {
                return Udp2022Status.SessionEnded;
            }

            var side = session.Current?.Id == serverSessionId ? session.Current
                : session.Old?.Id == serverSessionId ? session.Old
                : null;
            var made = side is null;
            var now = _time.GetUtcNow();
            if (made && session.Old is not null && now - session.Old.LastHeard < Udp2022ClientSession.OldSessionHold)
            {
                return Udp2022Status.Replayed; // a third server session while the old one still speaks
            }

            side ??= new Udp2022ServerSide(serverSessionId, SessionAead(serverSessionId, _psk));
            var status = !OpenBody(packet, header, side.Aead, body) ? Udp2022Status.AuthenticationFailed
                : body[0] != Aead2022Framing.ResponseType || BinaryPrimitives.ReadUInt64BigEndian(body[ServerClientSessionAt..]) != session.SessionId ? Udp2022Status.InvalidHeader
                : !Aead2022Framing.HasFreshTime(body, _time) ? Udp2022Status.StaleTimestamp
                : !TryPadding(body, ServerPaddingAt, out var payloadStart) ? Udp2022Status.InvalidHeader
                : !side.Packets.TryTake(packetId) ? Udp2022Status.Replayed
                : Found(packet, body, payloadStart, out offset, out length);
            if (status != Udp2022Status.Ok)
            {
                if (made)
                {
                    side.Aead?.Dispose();
                }

                return status;
            }

            side.LastHeard = now;
            if (made)
            {
                session.Old?.Aead?.Dispose();
                session.Old = session.Current;
                session.Current = side;
            }

            return Udp2022Status.Ok;
        }
    }

    private static ulong RandomId()
    {
        Span<byte> id = stackalloc byte[8];
        RandomNumberGenerator.Fill(id);
        return BinaryPrimitives.ReadUInt64BigEndian(id);
    }

    /// <summary>The padding length at <paramref name="at"/> and the padding after it must fit the body; the payload follows.</summary>
    private static bool TryPadding(ReadOnlySpan<byte> body, int at, out int payloadStart)
    {
        payloadStart = at + 2 + BinaryPrimitives.ReadUInt16BigEndian(body[at..]);
        return payloadStart <= body.Length;
    }

    /// <summary>Where the body (type first) starts in a packet from the server, or from the client (after any identity headers).</summary>
    private int BodyAt(bool fromServer) => _chacha ? XNonceSize + SeparateHeaderSize : SeparateHeaderSize + (fromServer ? 0 : _requestIdentitySize);

    /// <summary>AES methods: the session's AEAD under its BLAKE3 subkey from <paramref name="key"/>; ChaCha20: none (the PSK's XChaCha seals all).</summary>
    private IAeadCipher? SessionAead(ulong sessionId, byte[] key)
    {
        if (_chacha)
        {
            return null;
        }

        Span<byte> subkey = stackalloc byte[_cipher.KeySize];
        SessionSubkey(sessionId, key, subkey);
        var aead = _cipher.CreateAead(subkey);
        CryptographicOperations.ZeroMemory(subkey);
        return aead;
    }

    /// <summary>SIP022 § 3.2.1: BLAKE3 <c>derive_key</c> of the PSK (or the user's key) and the session ID's 8 bytes.</summary>
    private static void SessionSubkey(ulong sessionId, byte[] key, Span<byte> subkey)
    {
        Span<byte> id = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(id, sessionId);
        KeyDerivation.Blake3SessionSubkey(key, id, subkey);
    }

    /// <summary>
    /// Seals <paramref name="bodyLength"/> bytes of body (from <see cref="BodyAt"/>) under the given IDs; returns the
    /// packet's length. A client's request carries its identity headers, its separate header sealed with the first
    /// identity key; a reply to a multi-user server's <paramref name="user"/> has its separate header sealed with the user's key.
    /// </summary>
    private int Seal(Span<byte> packet, ulong sessionId, ulong packetId, IAeadCipher? aead, int bodyLength, bool fromServer, ServerUser? user)
    {
        if (_chacha)
        {
            var nonce = packet[..XNonceSize];
            RandomNumberGenerator.Fill(nonce);
            BinaryPrimitives.WriteUInt64BigEndian(packet[XNonceSize..], sessionId);
            BinaryPrimitives.WriteUInt64BigEndian(packet[(XNonceSize + 8)..], packetId);
            var sealedLength = SeparateHeaderSize + bodyLength;
            var plain = packet.Slice(XNonceSize, sealedLength);
            XSeal(nonce, plain, packet.Slice(XNonceSize + sealedLength, TagSize));
            return XNonceSize + sealedLength + TagSize;
        }

        Span<byte> header = stackalloc byte[SeparateHeaderSize];
        BinaryPrimitives.WriteUInt64BigEndian(header, sessionId);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], packetId);
        var bodyAt = BodyAt(fromServer);
        var body = packet.Slice(bodyAt, bodyLength);
        aead!.Encrypt(header[4..], body, body, packet.Slice(bodyAt + bodyLength, TagSize));
        if (!fromServer && _identities is not null)
        {
            _identities.WriteUdp(header, packet[SeparateHeaderSize..]);
            _identities.SealSeparateHeader(header, packet);
        }
        else
        {
            (user?.HeaderCipher ?? _headerCipher!).Encrypt(header, packet);
        }

        return bodyAt + bodyLength + TagSize;
    }

    /// <summary>
    /// A packet's session and packet IDs. AES methods: the separate header decrypted into <paramref name="header"/>
    /// (its last 12 bytes are the body's nonce), not yet authenticated: <see cref="OpenBody"/> does that with the
    /// session's AEAD. ChaCha20: the whole packet opened in place with the PSK, so false means it did not authenticate,
    /// and <paramref name="body"/> is its plaintext from the type byte on.
    /// </summary>
    private bool TryIds(Span<byte> packet, Span<byte> header, bool fromServer, out ulong sessionId, out ulong packetId, out Span<byte> body)
    {
        if (_chacha)
        {
            var sealedPart = packet[XNonceSize..^TagSize];
            if (!XTryOpen(packet[..XNonceSize], sealedPart, packet[^TagSize..]))
            {
                sessionId = packetId = 0;
                body = default;
                return false;
            }

            sessionId = BinaryPrimitives.ReadUInt64BigEndian(sealedPart);
            packetId = BinaryPrimitives.ReadUInt64BigEndian(sealedPart[8..]);
            body = sealedPart[SeparateHeaderSize..];
            return true;
        }

        _headerCipher!.Decrypt(packet, header);

        sessionId = BinaryPrimitives.ReadUInt64BigEndian(header);
        packetId = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
        body = packet[BodyAt(fromServer)..^TagSize];
        return true;
    }

    /// <summary>
    /// A server session for a client session ID seen for the first time, or null when its packet does not authenticate.
    /// AES methods: the body is opened in place under the session's subkey on this thread's re-keyed OpenSSL context
    /// (<see cref="PacketAead"/>; <paramref name="opened"/> then says so), so noise costs a key derivation and a failed
    /// open, not a session; the session's own cipher is made from the same subkey. Where that context is not there,
    /// the opening is left to the session's cipher. ChaCha20: the packet is already open (<see cref="TryIds"/>).
    /// </summary>
    private Udp2022ServerSession? TryNewSession(Span<byte> packet, ReadOnlySpan<byte> header, ulong sessionId, Span<byte> body, ServerUser? user, ref bool opened)
    {
        if (_chacha)
        {
            return new Udp2022ServerSession(sessionId, null, RandomId());
        }

        Span<byte> subkey = stackalloc byte[_cipher.KeySize];
        SessionSubkey(sessionId, user?.Key ?? _psk, subkey);
        try
        {
            if (_firstOpen is not null)
            {
                opened = _firstOpen.TryOpen(subkey, header[4..], body, packet[^TagSize..], body);
                if (!opened)
                {
                    return null;
                }
            }

            return new Udp2022ServerSession(sessionId, _cipher.CreateAead(subkey), RandomId(), user);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(subkey);
        }
    }

    /// <summary>AES methods: opens the body in place with the session's AEAD. ChaCha20: already open (<see cref="TryIds"/>).</summary>
    private bool OpenBody(Span<byte> packet, ReadOnlySpan<byte> header, IAeadCipher? aead, Span<byte> body) =>
        _chacha || aead!.TryDecrypt(header[4..], body, packet[^TagSize..], body);

    private static Udp2022Status Found(Span<byte> packet, Span<byte> body, int payloadStart, out int offset, out int length)
    {
        offset = packet.Length - TagSize - body.Length + payloadStart;
        length = body.Length - payloadStart;
        return Udp2022Status.Ok;
    }

    /// <summary>XChaCha20-Poly1305 under the PSK, in place.</summary>
    private void XSeal(ReadOnlySpan<byte> nonce, Span<byte> plain, Span<byte> tag)
    {
        if (_xInner is null)
        {
            using var xchacha = new DotNetXChaCha20Poly1305(_psk);
            xchacha.Encrypt(nonce, plain, plain, tag);
            return;
        }

        Span<byte> subkey = stackalloc byte[32];
        Span<byte> inner = stackalloc byte[12];
        XInner(nonce, subkey, inner);
        _xInner.Seal(subkey, inner, plain, plain, tag);
        CryptographicOperations.ZeroMemory(subkey);
    }

    /// <summary>XChaCha20-Poly1305 under the PSK, opened in place; false (no exception) when it does not authenticate.</summary>
    private bool XTryOpen(ReadOnlySpan<byte> nonce, Span<byte> sealedPart, ReadOnlySpan<byte> tag)
    {
        if (_xInner is null)
        {
            using var xchacha = new DotNetXChaCha20Poly1305(_psk);
            return xchacha.TryDecrypt(nonce, sealedPart, tag, sealedPart);
        }

        Span<byte> subkey = stackalloc byte[32];
        Span<byte> inner = stackalloc byte[12];
        XInner(nonce, subkey, inner);
        var opened = _xInner.TryOpen(subkey, inner, sealedPart, tag, sealedPart);
        CryptographicOperations.ZeroMemory(subkey);
        return opened;
    }

    /// <summary>XChaCha20 (draft-irtf-cfrg-xchacha): subkey = HChaCha20(key, nonce[0..16]), nonce 0x00000000 || nonce[16..24].</summary>
    private void XInner(ReadOnlySpan<byte> nonce, Span<byte> subkey, Span<byte> inner)
    {
        HChaCha20.DeriveSubkey(_psk, nonce[..16], subkey);
        inner[..4].Clear();
        nonce[16..].CopyTo(inner[4..]);
    }
}
