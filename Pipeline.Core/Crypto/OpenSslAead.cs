using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// AES-GCM or ChaCha20-Poly1305 (IETF; <paramref name="evpCipher"/> is OpenSSL's <c>EVP_CIPHER</c>) for one session subkey, straight on OpenSSL's EVP interface: the key is set
/// once per context and each chunk sets only its nonce. .NET's <c>AesGcm</c> and <c>ChaCha20Poly1305</c> do the same
/// calls plus, on every chunk, an error-queue clear and parameter look-ups (4–5 % of a bulk transfer's samples). The
/// context is built on first use and given back by <see cref="ReleaseKeySchedule"/> while the connection is quiet.
/// 12-byte nonce, 16-byte tag; plaintext and ciphertext may be the same memory.
/// </summary>
internal sealed class OpenSslAead(nint evpCipher, ReadOnlySpan<byte> key) : IAeadCipher
{
    private readonly byte[] _key = key.ToArray();
    private EvpCipherContext? _context;
    private bool _disposed;

    public int NonceSize => 12;

    public int TagSize => 16;

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag) =>
        Context().Seal([], nonce, plaintext, ciphertext, tag);

    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext) =>
        Context().TryOpen([], nonce, ciphertext, tag, plaintext);

    public void ReleaseKeySchedule()
    {
        _context?.Dispose();
        _context = null;
    }

    public void Dispose()
    {
        _disposed = true;
        ReleaseKeySchedule();
        CryptographicOperations.ZeroMemory(_key);
    }

    /// <summary>The context with the key set, built on first use; after <see cref="Dispose"/> (the key is zeroed) never rebuilt.</summary>
    private EvpCipherContext Context()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_context is null)
        {
            var context = new EvpCipherContext();
            try
            {
                context.SetUp(evpCipher, _key);
            }
            catch
            {
                context.Dispose();
                throw;
            }

            _context = context;
        }

        return _context;
    }
}
