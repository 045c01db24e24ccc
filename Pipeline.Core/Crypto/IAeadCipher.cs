namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// One AEAD key (a session subkey). Stateless between calls: the caller owns the nonce.
/// Implementations must allow <paramref name="plaintext"/> and <paramref name="ciphertext"/> to be the same memory.
/// </summary>
internal interface IAeadCipher : IDisposable
{
    /// <summary>Nonce length in bytes (12 for IETF constructions, 24 for XChaCha, 8 for the original ChaCha20-Poly1305).</summary>
    int NonceSize { get; }

    /// <summary>Tag length in bytes (16 for every Shadowsocks AEAD).</summary>
    int TagSize { get; }

    void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag);

    /// <summary>Returns false, never throws, when the tag does not verify.</summary>
    bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext);

    /// <summary>
    /// Gives back what the cipher built from its key, for a connection that has gone quiet; the next call builds it
    /// again. Only where that state is large (AES-GCM on OpenSSL: 1.7 KiB); by default nothing is given back.
    /// </summary>
    void ReleaseKeySchedule()
    {
    }
}
