using System.Buffers.Binary;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// SIP022 TCP encryptor for one direction (layout in <see cref="Aead2022Framing"/>). As a request (the client's
/// direction) the first call's plaintext must begin with the address header: it goes into the variable header with
/// up to one chunk of the data after it, and random padding when no data came with it. As a response (the server's
/// direction, given the request's decryptor)
/// the first non-empty call writes the header that names the request's salt, then the first data as its payload.
/// The salt and the headers leave in the same output as the first data, so one send carries them (SIP022 § 3.1.3).
/// Later data is cut into chunks of at most 0x3FFF bytes, as SIP004 (SIP022 allows larger; the buffers are sized for these).
/// </summary>
internal sealed class Aead2022StreamEncryptor : IStreamEncryptor
{
    private readonly IAeadCipher _aead;
    private readonly byte[] _salt;
    private readonly byte[] _nonce;
    private readonly Aead2022StreamDecryptor? _request;
    private readonly TimeProvider _time;

    /// <summary>A request's identity headers (SIP023), written after the salt; null without.</summary>
    private readonly IdentityChain? _identities;
    private bool _headerWritten;

    /// <summary>
    /// A request stream (client to server) when <paramref name="request"/> is null; else a response stream (server to
    /// client) answering the request that <paramref name="request"/> decrypts. A request through a multi-user server
    /// carries <paramref name="identities"/>' headers after its salt; <paramref name="psk"/> is then the user's key.
    /// </summary>
    public Aead2022StreamEncryptor(
        CipherInfo cipher, ReadOnlySpan<byte> psk, ReadOnlySpan<byte> salt, Aead2022StreamDecryptor? request, TimeProvider time, IdentityChain? identities = null)
    {
        if (!cipher.Is2022)
        {
            throw new ArgumentException($"{cipher.Name} is not a 2022 method.", nameof(cipher));
        }

        if (salt.Length != cipher.SaltSize)
        {
            throw new ArgumentException($"{cipher.Name} needs a {cipher.SaltSize}-byte salt, not {salt.Length}.", nameof(salt));
        }

        _salt = salt.ToArray();
        Span<byte> subkey = stackalloc byte[cipher.KeySize];
        KeyDerivation.Blake3SessionSubkey(psk, _salt, subkey);
        _aead = cipher.CreateAead(subkey);
        CryptographicOperations.ZeroMemory(subkey);
        _nonce = new byte[_aead.NonceSize];
        _request = request;
        _time = time;
        _identities = request is null || identities is null ? identities : throw new ArgumentException("Identity headers come in requests only.", nameof(identities));
    }

    /// <summary>This stream's salt: the one a response must name.</summary>
    public ReadOnlySpan<byte> Salt => _salt;

    public int MaxOutputSize(int plaintextLength)
    {
        var chunks = AeadFraming.ChunkedSize(plaintextLength, AeadTagSize);
        if (_headerWritten)
        {
            return chunks;
        }

        return _request is null
            ? _salt.Length + (_identities?.Size ?? 0) + Aead2022Framing.RequestFixedHeaderSize + AeadTagSize + 2 + Aead2022Framing.MaxPaddingLength + AeadTagSize + chunks
            : _salt.Length + Aead2022Framing.ResponseHeaderSize(_salt.Length) + AeadTagSize + chunks;
    }

    public int Encrypt(ReadOnlySpan<byte> plaintext, Span<byte> output)
    {
        var needed = MaxOutputSize(plaintext.Length);
        if (output.Length < needed)
        {
            throw new ArgumentException($"The output needs {needed} bytes but has {output.Length}.", nameof(output));
        }

        var offset = 0;
        if (!_headerWritten)
        {
            if (plaintext.IsEmpty)
            {
                return 0; // the headers go with the first data
            }

            _salt.CopyTo(output);
            offset = _salt.Length;
            if (_identities is not null)
            {
                _identities.WriteTcp(_salt, output[offset..]);
                offset += _identities.Size;
            }

            var consumed = _request is null ? WriteRequestHeaders(plaintext, output, ref offset) : WriteResponseHeader(plaintext, output, ref offset);
            plaintext = plaintext[consumed..];
            _headerWritten = true;
        }

        while (!plaintext.IsEmpty)
        {
            var n = Math.Min(plaintext.Length, AeadFraming.MaxPayloadSize);
            var length = output.Slice(offset, AeadFraming.LengthSize);
            BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)n);
            offset += Seal(length, output[offset..]);
            offset += Seal(plaintext[..n], output[offset..]);
            plaintext = plaintext[n..];
        }

        return offset;
    }

    public void ReleaseKeySchedule() => _aead.ReleaseKeySchedule();

    public void Dispose() => _aead.Dispose();

    private static int AeadTagSize => 16;

    /// <summary>The fixed header and the variable header (address, padding, the first data); returns the plaintext bytes used.</summary>
    private int WriteRequestHeaders(ReadOnlySpan<byte> plaintext, Span<byte> output, ref int offset)
    {
        var addressSize = AddressHeader.SizeOf(plaintext);
        if (addressSize < 0 || addressSize > plaintext.Length)
        {
            throw new InvalidOperationException("A 2022 request's first bytes must be a whole address header.");
        }

        var data = Math.Min(plaintext.Length - addressSize, AeadFraming.MaxPayloadSize);
        var padding = data == 0 ? RandomNumberGenerator.GetInt32(1, Aead2022Framing.MaxPaddingLength + 1) : 0;
        var variableLength = addressSize + 2 + padding + data;

        var fixedHeader = output.Slice(offset, Aead2022Framing.RequestFixedHeaderSize);
        Aead2022Framing.WriteTypeAndTime(fixedHeader, Aead2022Framing.RequestType, _time);
        BinaryPrimitives.WriteUInt16BigEndian(fixedHeader[9..], (ushort)variableLength);
        offset += Seal(fixedHeader, output[offset..]);

        var variable = output.Slice(offset, variableLength);
        plaintext[..addressSize].CopyTo(variable);
        BinaryPrimitives.WriteUInt16BigEndian(variable[addressSize..], (ushort)padding);
        RandomNumberGenerator.Fill(variable.Slice(addressSize + 2, padding));
        plaintext.Slice(addressSize, data).CopyTo(variable[(addressSize + 2 + padding)..]);
        offset += Seal(variable, output[offset..]);
        return addressSize + data;
    }

    /// <summary>The response header (naming the request's salt) and the first data as its payload; returns the plaintext bytes used.</summary>
    private int WriteResponseHeader(ReadOnlySpan<byte> plaintext, Span<byte> output, ref int offset)
    {
        var requestSalt = _request!.Salt;
        if (requestSalt.Length != _salt.Length)
        {
            throw new InvalidOperationException("A 2022 response was started before its request's salt was read.");
        }

        var n = Math.Min(plaintext.Length, AeadFraming.MaxPayloadSize);
        var header = output.Slice(offset, Aead2022Framing.ResponseHeaderSize(_salt.Length));
        Aead2022Framing.WriteTypeAndTime(header, Aead2022Framing.ResponseType, _time);
        requestSalt.CopyTo(header[9..]);
        BinaryPrimitives.WriteUInt16BigEndian(header[(9 + requestSalt.Length)..], (ushort)n);
        offset += Seal(header, output[offset..]);

        offset += Seal(plaintext[..n], output[offset..]);
        return n;
    }

    /// <summary>
    /// Seals <paramref name="unit"/> into the start of <paramref name="destination"/>, its tag right after it, and returns
    /// both sizes. The unit may already sit at the start of the destination (sealed in place).
    /// </summary>
    private int Seal(ReadOnlySpan<byte> unit, Span<byte> destination)
    {
        _aead.Encrypt(_nonce, unit, destination[..unit.Length], destination.Slice(unit.Length, AeadTagSize));
        AeadNonce.Increment(_nonce);
        return unit.Length + AeadTagSize;
    }
}
