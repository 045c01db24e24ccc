using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): subkey = HChaCha20(key, nonce[0..16]), then the platform's
/// RFC 8439 ChaCha20-Poly1305 under that subkey with nonce <c>0x00000000 || nonce[16..24]</c>. The subkey's
/// cipher object is kept while the nonce prefix repeats (UDP: always zero).
/// </summary>
internal sealed class DotNetXChaCha20Poly1305(ReadOnlySpan<byte> key) : IAeadCipher
{
    private readonly byte[] _key = key.ToArray();
    private readonly byte[] _prefix = new byte[16];
    private ChaCha20Poly1305? _inner;

    public int NonceSize => 24;

    public int TagSize => 16;

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        Span<byte> inner = stackalloc byte[12];
        Inner(nonce, inner).Encrypt(inner, plaintext, ciphertext, tag);
    }

    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        Span<byte> inner = stackalloc byte[12];
        try
        {
            Inner(nonce, inner).Decrypt(inner, ciphertext, tag, plaintext);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _inner?.Dispose();
        CryptographicOperations.ZeroMemory(_key);
    }

    private ChaCha20Poly1305 Inner(ReadOnlySpan<byte> nonce, Span<byte> innerNonce)
    {
        if (nonce.Length != 24)
        {
            throw new ArgumentException("XChaCha20-Poly1305 takes a 24-byte nonce.", nameof(nonce));
        }

        innerNonce[..4].Clear();
        nonce[16..].CopyTo(innerNonce[4..]);
        if (_inner is null || !nonce[..16].SequenceEqual(_prefix))
        {
            Span<byte> subkey = stackalloc byte[32];
            HChaCha20.DeriveSubkey(_key, nonce[..16], subkey);
            _inner?.Dispose();
            _inner = new ChaCha20Poly1305(subkey);
            CryptographicOperations.ZeroMemory(subkey);
            nonce[..16].CopyTo(_prefix);
        }

        return _inner;
    }
}
