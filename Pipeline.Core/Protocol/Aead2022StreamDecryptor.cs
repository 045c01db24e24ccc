using System.Buffers.Binary;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// SIP022 TCP decryptor for one direction (layout in <see cref="Aead2022Framing"/>), an incremental state machine like
/// <see cref="AeadStreamDecryptor"/>: salt → header → (request: variable header) → payload / length → payload → ...
/// Input may be split at any byte.
/// </summary>
/// <remarks>
/// As a request (the server's side) it checks the fixed header's type and timestamp, then writes the variable header's
/// address and data with the padding taken out, so what comes out starts with the address header as in SIP004.
/// As a response (the client's side, given the request's encryptor) it checks the type, the timestamp and that the
/// header names the request's salt. A failed check is <see cref="DecryptStatus.InvalidHeader"/> or
/// <see cref="DecryptStatus.StaleTimestamp"/>, and kills the stream as a failed tag does. Whether a request's salt was
/// seen before is the caller's to ask (<see cref="Salt"/>), once the header is through. A response's salt is not
/// remembered: SIP022 § 3.1.5 says a client SHOULD NOT, since the request salt its header must name already ties it
/// to this stream (a recorded response names another request's salt). The output must not overlap
/// the input. A unit cut by the end of the input is copied into a buffer rented for it (from the relay's
/// <see cref="ChunkPool"/> when it is 8 KiB or more, which the idle trim can give back) and returned once it is whole.
/// A multi-user server's request stream (SIP023) reads the identity header after the salt and goes on under the key of
/// the user it names (<see cref="User"/>, <see cref="Psk"/>); a header that names none fails as a bad tag does.
/// </remarks>
internal sealed class Aead2022StreamDecryptor : IStreamDecryptor
{
    private enum Unit
    {
        Salt,
        Header,
        VariableHeader,
        Length,
        Payload,
    }

    private readonly CipherInfo _cipher;
    private readonly byte[] _salt;

    /// <summary>A multi-user server's users (SIP023): an identity header follows the salt, and names the key of the rest.</summary>
    private readonly ServerUsers? _users;

    /// <summary>The salt, then the identity header when there are <see cref="_users"/>.</summary>
    private readonly byte[] _saltAndIdentity;
    private readonly Aead2022StreamEncryptor? _request;
    private readonly TimeProvider _time;
    private readonly ChunkPool _pool;
    private int _saltCount;
    private IAeadCipher? _aead;
    private byte[] _nonce = [];

    private Unit _unit = Unit.Salt;

    /// <summary>The plaintext length of the unit being read (its tag comes after it).</summary>
    private int _unitLength;

    private byte[]? _pending;
    private int _pendingCount;
    private DecryptStatus _failure = DecryptStatus.Ok;

    /// <summary>
    /// A request stream (what a server reads) when <paramref name="request"/> is null; else the response stream (what a
    /// client reads) to the request <paramref name="request"/> encrypts. A multi-user server's request stream is given
    /// its <paramref name="users"/>, and <paramref name="psk"/> is then its identity key. Carry-over buffers come from
    /// <paramref name="pool"/> (<see cref="ChunkPool.Shared"/> unless given).
    /// </summary>
    public Aead2022StreamDecryptor(
        CipherInfo cipher, byte[] psk, Aead2022StreamEncryptor? request, TimeProvider time, ServerUsers? users = null, ChunkPool? pool = null)
    {
        if (!cipher.Is2022)
        {
            throw new ArgumentException($"{cipher.Name} is not a 2022 method.", nameof(cipher));
        }

        if (users is not null && request is not null)
        {
            throw new ArgumentException("Identity headers come in requests only.", nameof(users));
        }

        _cipher = cipher;
        Psk = psk;
        _users = users;
        _salt = new byte[cipher.SaltSize];
        _saltAndIdentity = users is null ? _salt : new byte[cipher.SaltSize + AesBlock.Size];
        _request = request;
        _time = time;
        _pool = pool ?? ChunkPool.Shared;
    }

    /// <summary>The peer's salt once all of it (and the identity header, if any) has been read; empty before.</summary>
    public ReadOnlySpan<byte> Salt => _saltCount == _saltAndIdentity.Length ? _saltAndIdentity.AsSpan(0, _salt.Length) : [];

    /// <summary>
    /// The key of this stream's session: the PSK, or on a multi-user server, once the identity header is read, the
    /// user's key (which the response is sealed with too).
    /// </summary>
    public byte[] Psk { get; private set; }

    /// <summary>A multi-user server's request stream: the user its identity header named, once read; else null.</summary>
    public ServerUser? User { get; private set; }

    private static int TagSize => 16;

    /// <summary>Plaintext never outgrows the ciphertext it comes from, counting what is buffered.</summary>
    public int MaxOutputSize(int ciphertextLength) => ciphertextLength + _pendingCount;

    public DecryptStatus Decrypt(ReadOnlySpan<byte> ciphertext, Span<byte> output, out int written)
    {
        written = 0;
        if (_failure != DecryptStatus.Ok)
        {
            return _failure;
        }

        if (_unit == Unit.Salt)
        {
            var take = Math.Min(_saltAndIdentity.Length - _saltCount, ciphertext.Length);
            ciphertext[..take].CopyTo(_saltAndIdentity.AsSpan(_saltCount));
            _saltCount += take;
            ciphertext = ciphertext[take..];
            if (_saltCount < _saltAndIdentity.Length)
            {
                return DecryptStatus.Ok;
            }

            if (!StartSession())
            {
                return Fail(DecryptStatus.AuthenticationFailed); // no user of ours: as a failed tag, to a prober
            }
        }

        while (true)
        {
            var need = _unitLength + TagSize;
            ReadOnlySpan<byte> unit;
            var fromPending = false;
            if (_pendingCount == 0 && ciphertext.Length >= need)
            {
                unit = ciphertext[..need];
                ciphertext = ciphertext[need..];
            }
            else
            {
                if (ciphertext.IsEmpty)
                {
                    return DecryptStatus.Ok;
                }

                var pending = _pending ??= _pool.Rent(need);
                var take = Math.Min(need - _pendingCount, ciphertext.Length);
                ciphertext[..take].CopyTo(pending.AsSpan(_pendingCount));
                _pendingCount += take;
                ciphertext = ciphertext[take..];
                if (_pendingCount < need)
                {
                    return DecryptStatus.Ok;
                }

                unit = pending.AsSpan(0, need);
                _pendingCount = 0;
                fromPending = true;
            }

            var status = Open(unit, output, ref written);
            if (fromPending)
            {
                ReleasePending();
            }

            if (status != DecryptStatus.Ok)
            {
                return Fail(status);
            }
        }
    }

    public void ReleaseKeySchedule() => _aead?.ReleaseKeySchedule();

    /// <summary>Releases the cipher; a buffer still rented is left to the garbage collector (see <see cref="AeadStreamDecryptor.Dispose"/>).</summary>
    public void Dispose() => _aead?.Dispose();

    /// <summary>Opens one whole unit (plaintext and tag) and moves to the next.</summary>
    private DecryptStatus Open(ReadOnlySpan<byte> unit, Span<byte> output, ref int written)
    {
        var n = _unitLength;
        var destination = output.Slice(written, n);
        if (!_aead!.TryDecrypt(_nonce, unit[..n], unit[n..], destination))
        {
            destination.Clear();
            return DecryptStatus.AuthenticationFailed;
        }

        AeadNonce.Increment(_nonce);
        switch (_unit)
        {
            case Unit.Header when _request is null:
                return ReadRequestHeader(destination);
            case Unit.Header:
                return ReadResponseHeader(destination);
            case Unit.VariableHeader:
                return ReadVariableHeader(destination, ref written);
            case Unit.Length:
                Next(Unit.Payload, BinaryPrimitives.ReadUInt16BigEndian(destination));
                return DecryptStatus.Ok;
            default:
                written += n;
                Next(Unit.Length, AeadFraming.LengthSize);
                return DecryptStatus.Ok;
        }
    }

    private DecryptStatus ReadRequestHeader(Span<byte> header)
    {
        var check = CheckTypeAndTime(header, Aead2022Framing.RequestType);
        var variableLength = BinaryPrimitives.ReadUInt16BigEndian(header[9..]);
        header.Clear();
        if (check != DecryptStatus.Ok)
        {
            return check;
        }

        if (variableLength == 0)
        {
            return DecryptStatus.InvalidHeader;
        }

        Next(Unit.VariableHeader, variableLength);
        return DecryptStatus.Ok;
    }

    private DecryptStatus ReadResponseHeader(Span<byte> header)
    {
        var check = CheckTypeAndTime(header, Aead2022Framing.ResponseType);
        var named = header.Slice(9, _salt.Length);
        if (check == DecryptStatus.Ok && !CryptographicOperations.FixedTimeEquals(named, _request!.Salt))
        {
            check = DecryptStatus.InvalidHeader;
        }

        var payloadLength = BinaryPrimitives.ReadUInt16BigEndian(header[(9 + _salt.Length)..]);
        header.Clear();
        if (check != DecryptStatus.Ok)
        {
            return check;
        }

        Next(Unit.Payload, payloadLength);
        return DecryptStatus.Ok;
    }

    /// <summary>
    /// The variable header, decrypted at the end of the output: the address header stays, the padding length and the
    /// padding go, the data moves up behind the address. Either data or padding must be there, and the padding must
    /// end inside the header (SIP022 § 3.1.3).
    /// </summary>
    private DecryptStatus ReadVariableHeader(Span<byte> variable, ref int written)
    {
        var addressSize = AddressHeader.SizeOf(variable);
        if (addressSize < 0 || addressSize + 2 > variable.Length)
        {
            variable.Clear();
            return DecryptStatus.InvalidHeader;
        }

        int padding = BinaryPrimitives.ReadUInt16BigEndian(variable[addressSize..]);
        var data = variable.Length - addressSize - 2 - padding;
        if (padding > Aead2022Framing.MaxPaddingLength || data < 0 || (padding == 0 && data == 0))
        {
            variable.Clear();
            return DecryptStatus.InvalidHeader;
        }

        variable.Slice(addressSize + 2 + padding, data).CopyTo(variable[addressSize..]);
        variable[(addressSize + data)..].Clear();
        written += addressSize + data;
        Next(Unit.Length, AeadFraming.LengthSize);
        return DecryptStatus.Ok;
    }

    private DecryptStatus CheckTypeAndTime(ReadOnlySpan<byte> header, byte type) =>
        header[0] != type ? DecryptStatus.InvalidHeader
        : Aead2022Framing.HasFreshTime(header, _time) ? DecryptStatus.Ok
        : DecryptStatus.StaleTimestamp;

    private void Next(Unit unit, int plaintextLength)
    {
        _unit = unit;
        _unitLength = plaintextLength;
    }

    /// <summary>The session's AEAD under the PSK, or the user's key its identity header names; false for no user of ours.</summary>
    private bool StartSession()
    {
        if (_users is not null)
        {
            _saltAndIdentity.AsSpan(0, _salt.Length).CopyTo(_salt);
            User = _users.FindTcp(_salt, _saltAndIdentity.AsSpan(_salt.Length));
            if (User is null)
            {
                return false;
            }

            Psk = User.Key;
        }

        Span<byte> subkey = stackalloc byte[_cipher.KeySize];
        KeyDerivation.Blake3SessionSubkey(Psk, _salt, subkey);
        _aead = _cipher.CreateAead(subkey);
        CryptographicOperations.ZeroMemory(subkey);
        _nonce = new byte[_aead.NonceSize];
        Next(Unit.Header, _request is null ? Aead2022Framing.RequestFixedHeaderSize : Aead2022Framing.ResponseHeaderSize(_salt.Length));
        return true;
    }

    private void ReleasePending()
    {
        if (_pending is { } pending)
        {
            _pending = null;
            _pool.Return(pending);
        }
    }

    private DecryptStatus Fail(DecryptStatus status)
    {
        _failure = status;
        ReleasePending(); // inside Decrypt: the buffer is ours to give back
        _pendingCount = 0;
        return status;
    }
}
