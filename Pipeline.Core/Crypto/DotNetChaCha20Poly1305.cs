using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>ChaCha20-Poly1305 (RFC 8439, the "IETF" construction) on the platform's OpenSSL.</summary>
internal sealed class DotNetChaCha20Poly1305(ReadOnlySpan<byte> key) : IAeadCipher
{
    private readonly ChaCha20Poly1305 _cipher = new(key);

    public int NonceSize => 12;

    public int TagSize => 16;

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag) =>
        _cipher.Encrypt(nonce, plaintext, ciphertext, tag);

    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        try
        {
            _cipher.Decrypt(nonce, ciphertext, tag, plaintext);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }

    public void Dispose() => _cipher.Dispose();
}
