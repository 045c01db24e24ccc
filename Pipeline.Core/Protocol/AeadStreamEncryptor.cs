using System.Buffers.Binary;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// SIP004 AEAD TCP encryptor: the salt on the first call, then chunks of at most 0x3FFF payload bytes
/// (layout in <see cref="AeadFraming"/>). No allocation per call: the nonce lives in a field and every chunk is sealed
/// straight into the caller's output.
/// </summary>
internal sealed class AeadStreamEncryptor : IStreamEncryptor
{
    private readonly IAeadCipher _aead;
    private readonly byte[] _salt;
    private readonly byte[] _nonce;
    private readonly int _tagSize;
    private bool _saltWritten;

    /// <summary>Derives the session subkey from <paramref name="masterKey"/> and <paramref name="salt"/> (SIP007).</summary>
    public AeadStreamEncryptor(CipherInfo cipher, ReadOnlySpan<byte> masterKey, ReadOnlySpan<byte> salt)
    {
        if (cipher.Family != CipherFamily.Aead)
        {
            throw new ArgumentException($"{cipher.Name} is not an AEAD method.", nameof(cipher));
        }

        if (salt.Length != cipher.SaltSize)
        {
            throw new ArgumentException($"{cipher.Name} needs a {cipher.SaltSize}-byte salt, not {salt.Length}.", nameof(salt));
        }

        _salt = salt.ToArray();
        Span<byte> subkey = stackalloc byte[cipher.KeySize];
        KeyDerivation.SessionSubkey(masterKey, _salt, subkey);
        _aead = cipher.CreateAead(subkey);
        CryptographicOperations.ZeroMemory(subkey);
        _nonce = new byte[_aead.NonceSize];
        _tagSize = _aead.TagSize;
    }

    public int MaxOutputSize(int plaintextLength) =>
        (_saltWritten ? 0 : _salt.Length) + AeadFraming.ChunkedSize(plaintextLength, _tagSize);

    /// <summary>
    /// Seals all of <paramref name="plaintext"/> into <paramref name="output"/> (which must not overlap it and must hold
    /// <see cref="MaxOutputSize"/> bytes). An empty input writes only the salt, if it is still due.
    /// </summary>
    public int Encrypt(ReadOnlySpan<byte> plaintext, Span<byte> output)
    {
        var needed = MaxOutputSize(plaintext.Length);
        if (output.Length < needed)
        {
            throw new ArgumentException($"The output needs {needed} bytes but has {output.Length}.", nameof(output));
        }

        var offset = 0;
        if (!_saltWritten)
        {
            _salt.CopyTo(output);
            offset = _salt.Length;
            _saltWritten = true;
        }

        var tagSize = _tagSize;
        while (!plaintext.IsEmpty)
        {
            var n = Math.Min(plaintext.Length, AeadFraming.MaxPayloadSize);

            var length = output.Slice(offset, AeadFraming.LengthSize);
            BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)n);
            _aead.Encrypt(_nonce, length, length, output.Slice(offset + AeadFraming.LengthSize, tagSize));
            AeadNonce.Increment(_nonce);
            offset += AeadFraming.LengthSize + tagSize;

            _aead.Encrypt(_nonce, plaintext[..n], output.Slice(offset, n), output.Slice(offset + n, tagSize));
            AeadNonce.Increment(_nonce);
            offset += n + tagSize;

            plaintext = plaintext[n..];
        }

        return offset;
    }

    public void ReleaseKeySchedule() => _aead.ReleaseKeySchedule();

    public void Dispose() => _aead.Dispose();
}
