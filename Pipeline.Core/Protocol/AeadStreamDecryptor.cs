using System.Buffers.Binary;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// SIP004 AEAD TCP decryptor: an incremental state machine, salt → length → payload → length → ...
/// Input may be split at any byte.
/// </summary>
/// <remarks>
/// <code>
/// +------+---------------+-----+----------------+-----+---------------+-----+-----
/// | salt | sealed length | tag | sealed payload | tag | sealed length | tag | ...
/// |  S   | 2, BE, ≤3FFF  | 16  | length bytes   | 16  |               |     |
/// +------+---------------+-----+----------------+-----+---------------+-----+-----
/// S = cipher.SaltSize; subkey = HKDF-SHA1(master, salt, "ss-subkey"); nonce 0, 1, 2, ... (little-endian)
/// </code>
/// A length is trusted only after its tag verifies. A zero length is accepted (an empty chunk: 16 tag bytes, no
/// plaintext); the top two bits set is <see cref="DecryptStatus.InvalidChunkLength"/>.
/// The output must not overlap the input.
/// A length or payload unit that lies whole inside the input is opened straight from the input span; only a unit cut
/// by the end of the input is copied into a buffer rented from the relay's <see cref="ChunkPool"/> (a 32 KiB bucket, which
/// the idle trim can give back) and returned once the unit is whole. A payload is opened straight into the caller's
/// output. Nothing is allocated per call.
/// A failed tag or a length over 0x3FFF kills the stream: that call and every later one return the failure. The
/// plaintext of whole chunks before the bad one in the same call is still reported in <c>written</c>; the bad chunk's
/// output range is cleared.
/// </remarks>
internal sealed class AeadStreamDecryptor : IStreamDecryptor
{
    private const int ReadingLength = -1;

    private readonly CipherInfo _cipher;
    private readonly byte[] _masterKey;
    private readonly byte[] _salt;
    private readonly ChunkPool _pool;
    private int _saltCount;
    private IAeadCipher? _aead;
    private byte[] _nonce = [];
    private int _tagSize;

    /// <summary>Partial length or payload unit carried over between calls.</summary>
    private byte[]? _pending;
    private int _pendingCount;

    /// <summary>Payload length of the chunk being read, or <see cref="ReadingLength"/> while reading a length.</summary>
    private int _payloadLength = ReadingLength;
    private DecryptStatus _failure = DecryptStatus.Ok;

    /// <summary>A decryptor whose carry-over buffer comes from <paramref name="pool"/> (<see cref="ChunkPool.Shared"/> unless given).</summary>
    public AeadStreamDecryptor(CipherInfo cipher, byte[] masterKey, ChunkPool? pool = null)
    {
        if (cipher.Family != CipherFamily.Aead)
        {
            throw new ArgumentException($"{cipher.Name} is not an AEAD method.", nameof(cipher));
        }

        _cipher = cipher;
        _masterKey = masterKey;
        _salt = new byte[cipher.SaltSize];
        _pool = pool ?? ChunkPool.Shared;
    }

    /// <summary>Plaintext never outgrows the ciphertext it comes from, counting what is buffered.</summary>
    public int MaxOutputSize(int ciphertextLength) => ciphertextLength + _pendingCount;

    public DecryptStatus Decrypt(ReadOnlySpan<byte> ciphertext, Span<byte> output, out int written)
    {
        written = 0;
        if (_failure != DecryptStatus.Ok)
        {
            return _failure;
        }

        if (_aead is null)
        {
            var take = Math.Min(_salt.Length - _saltCount, ciphertext.Length);
            ciphertext[..take].CopyTo(_salt.AsSpan(_saltCount));
            _saltCount += take;
            ciphertext = ciphertext[take..];
            if (_saltCount < _salt.Length)
            {
                return DecryptStatus.Ok;
            }

            StartSession();
        }

        var aead = _aead!;
        var nonce = _nonce;
        var tagSize = _tagSize;
        Span<byte> length = stackalloc byte[AeadFraming.LengthSize];
        while (true)
        {
            var need = (_payloadLength == ReadingLength ? AeadFraming.LengthSize : _payloadLength) + tagSize;
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

                // Rented only while a unit is cut by the end of a read, so an idle stream holds no buffer.
                var pending = _pending ??= _pool.Rent(AeadFraming.MaxPayloadSize + tagSize);
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

            if (_payloadLength == ReadingLength)
            {
                if (!aead.TryDecrypt(nonce, unit[..AeadFraming.LengthSize], unit[AeadFraming.LengthSize..], length))
                {
                    return Fail(DecryptStatus.AuthenticationFailed);
                }

                AeadNonce.Increment(nonce);
                int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(length);
                if (payloadLength > AeadFraming.MaxPayloadSize)
                {
                    return Fail(DecryptStatus.InvalidChunkLength);
                }

                _payloadLength = payloadLength;
            }
            else
            {
                var n = _payloadLength;
                var destination = output.Slice(written, n);
                if (!aead.TryDecrypt(nonce, unit[..n], unit[n..], destination))
                {
                    destination.Clear();
                    return Fail(DecryptStatus.AuthenticationFailed);
                }

                AeadNonce.Increment(nonce);
                written += n;
                _payloadLength = ReadingLength;
            }

            if (fromPending)
            {
                ReleasePending();
            }
        }
    }

    public void ReleaseKeySchedule() => _aead?.ReleaseKeySchedule();

    /// <summary>
    /// Releases the cipher. A carry-over buffer still rented is left to the garbage collector, not returned to the
    /// pool: a teardown may dispose the decryptor while a block is still inside <see cref="Decrypt"/>.
    /// </summary>
    public void Dispose() => _aead?.Dispose();

    private void ReleasePending()
    {
        if (_pending is { } pending)
        {
            _pending = null;
            _pool.Return(pending);
        }
    }

    private void StartSession()
    {
        Span<byte> subkey = stackalloc byte[_cipher.KeySize];
        KeyDerivation.SessionSubkey(_masterKey, _salt, subkey);
        _aead = _cipher.CreateAead(subkey);
        CryptographicOperations.ZeroMemory(subkey);
        _nonce = new byte[_aead.NonceSize];
        _tagSize = _aead.TagSize;
    }

    private DecryptStatus Fail(DecryptStatus status)
    {
        _failure = status;
        ReleasePending(); // inside Decrypt: the buffer is ours to give back (a prober's dead stream need not cost the pool one)
        _pendingCount = 0;
        return status;
    }
}
