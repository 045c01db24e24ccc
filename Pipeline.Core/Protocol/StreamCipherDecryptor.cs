using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// Legacy stream-cipher TCP decryptor: collects the peer's IV (it may arrive split), then runs the keystream.
/// There is no integrity, so it never fails.
/// </summary>
/// <remarks>
/// <code>
/// +-------------------------+---------------------------------------+
/// | IV (SaltSize bytes, may | ciphertext of the whole stream        |
/// | be empty: table, none)  | (one keystream, split anywhere)       |
/// +-------------------------+---------------------------------------+
/// </code>
/// The output may be the same memory as the input.
/// </remarks>
internal sealed class StreamCipherDecryptor : IStreamDecryptor
{
    private readonly CipherInfo _cipher;
    private readonly byte[] _masterKey;
    private readonly byte[] _iv;
    private int _ivCount;
    private IStreamCipher? _stream;

    public StreamCipherDecryptor(CipherInfo cipher, byte[] masterKey)
    {
        if (cipher.Family != CipherFamily.Stream)
        {
            throw new ArgumentException($"{cipher.Name} is not a stream method.", nameof(cipher));
        }

        _cipher = cipher;
        _masterKey = masterKey;
        _iv = new byte[cipher.SaltSize];
    }

    public int MaxOutputSize(int ciphertextLength) => ciphertextLength;

    public DecryptStatus Decrypt(ReadOnlySpan<byte> ciphertext, Span<byte> output, out int written)
    {
        written = 0;
        if (_stream is null)
        {
            var take = Math.Min(_iv.Length - _ivCount, ciphertext.Length);
            ciphertext[..take].CopyTo(_iv.AsSpan(_ivCount));
            _ivCount += take;
            ciphertext = ciphertext[take..];
            if (_ivCount < _iv.Length)
            {
                return DecryptStatus.Ok;
            }

            _stream = _cipher.CreateStream(_masterKey, _iv, encrypt: false);
        }

        _stream.Process(ciphertext, output[..ciphertext.Length]);
        written = ciphertext.Length;
        return DecryptStatus.Ok;
    }

    public void Dispose() => _stream?.Dispose();
}
