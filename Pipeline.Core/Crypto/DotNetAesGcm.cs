using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>AES-GCM (128/192/256) on the platform's OpenSSL: 12-byte nonce, 16-byte tag.</summary>
internal sealed class DotNetAesGcm(ReadOnlySpan<byte> key) : IAeadCipher
{
    private const int Tag = 16;
    private readonly AesGcm _aes = new(key, Tag);

    public int NonceSize => 12;

    public int TagSize => Tag;

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag) =>
        _aes.Encrypt(nonce, plaintext, ciphertext, tag);

    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        try
        {
            _aes.Decrypt(nonce, ciphertext, tag, plaintext);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }

    public void Dispose() => _aes.Dispose();
}
