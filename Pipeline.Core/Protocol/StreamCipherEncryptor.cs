using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>Legacy stream-cipher TCP encryptor: the IV on the first call, then the keystream over every byte.</summary>
/// <remarks>
/// <code>
/// +-------------------------+---------------------------------------+
/// | IV (SaltSize bytes, may | ciphertext of the whole stream        |
/// | be empty: table, none)  | (one keystream, split anywhere)       |
/// +-------------------------+---------------------------------------+
/// </code>
/// </remarks>
internal sealed class StreamCipherEncryptor : IStreamEncryptor
{
    private readonly IStreamCipher _stream;
    private readonly byte[] _iv;
    private bool _ivWritten;

    public StreamCipherEncryptor(CipherInfo cipher, ReadOnlySpan<byte> masterKey, ReadOnlySpan<byte> iv)
    {
        if (cipher.Family != CipherFamily.Stream)
        {
            throw new ArgumentException($"{cipher.Name} is not a stream method.", nameof(cipher));
        }

        if (iv.Length != cipher.SaltSize)
        {
            throw new ArgumentException($"{cipher.Name} needs a {cipher.SaltSize}-byte IV, not {iv.Length}.", nameof(iv));
        }

        _iv = iv.ToArray();
        _stream = cipher.CreateStream(masterKey, _iv, encrypt: true);
    }

    public int MaxOutputSize(int plaintextLength) => (_ivWritten ? 0 : _iv.Length) + plaintextLength;

    /// <summary>Encrypts into <paramref name="output"/>; it may be the same memory as <paramref name="plaintext"/> only once the IV is out.</summary>
    public int Encrypt(ReadOnlySpan<byte> plaintext, Span<byte> output)
    {
        var needed = MaxOutputSize(plaintext.Length);
        if (output.Length < needed)
        {
            throw new ArgumentException($"The output needs {needed} bytes but has {output.Length}.", nameof(output));
        }

        var offset = 0;
        if (!_ivWritten)
        {
            _iv.CopyTo(output);
            offset = _iv.Length;
            _ivWritten = true;
        }

        _stream.Process(plaintext, output.Slice(offset, plaintext.Length));
        return offset + plaintext.Length;
    }

    public void Dispose() => _stream.Dispose();
}
