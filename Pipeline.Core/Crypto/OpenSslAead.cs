using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// AES-GCM or ChaCha20-Poly1305 (IETF) for one session subkey, straight on OpenSSL's EVP interface: the key is set
/// once per context and each chunk sets only its nonce. .NET's <c>AesGcm</c> and <c>ChaCha20Poly1305</c> do the same
/// calls plus, on every chunk, an error-queue clear and parameter look-ups (4–5 % of a bulk transfer's samples). The
/// context is built on first use and given back by <see cref="ReleaseKeySchedule"/> while the connection is quiet.
/// 12-byte nonce, 16-byte tag; plaintext and ciphertext may be the same memory.
/// </summary>
internal sealed unsafe class OpenSslAead(Func<nint> evpCipher, ReadOnlySpan<byte> key) : IAeadCipher
{
    private const int Tag = 16;
    private readonly byte[] _key = key.ToArray();
    private EvpCipherContext? _context;
    private bool _disposed;

    public int NonceSize => 12;

    public int TagSize => Tag;

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        Check(nonce, ciphertext.Length, plaintext.Length, tag.Length);
        var context = Context();
        fixed (byte* n = nonce, input = plaintext, output = ciphertext, t = tag)
        {
            var length = 0;
            if (LibCrypto.EVP_CipherInit_ex(context, 0, 0, null, n, 1) != 1
                || LibCrypto.EVP_CipherUpdate(context, output, &length, input, plaintext.Length) != 1
                || LibCrypto.EVP_CipherFinal_ex(context, output + length, &length) != 1
                || LibCrypto.EVP_CIPHER_CTX_ctrl(context, LibCrypto.GetTag, Tag, t) != 1)
            {
                throw new CryptographicException("OpenSSL failed to seal a chunk.");
            }
        }
    }

    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        Check(nonce, plaintext.Length, ciphertext.Length, tag.Length);
        var context = Context();
        fixed (byte* n = nonce, input = ciphertext, output = plaintext, t = tag)
        {
            var length = 0;
            var opened = LibCrypto.EVP_CipherInit_ex(context, 0, 0, null, n, 0) == 1
                && LibCrypto.EVP_CipherUpdate(context, output, &length, input, ciphertext.Length) == 1
                && LibCrypto.EVP_CIPHER_CTX_ctrl(context, LibCrypto.SetTag, Tag, t) == 1
                && LibCrypto.EVP_CipherFinal_ex(context, output + length, &length) == 1;
            if (!opened)
            {
                LibCrypto.ERR_clear_error();
                plaintext[..ciphertext.Length].Clear();
            }

            return opened;
        }
    }

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

    private static void Check(ReadOnlySpan<byte> nonce, int outputLength, int inputLength, int tagLength)
    {
        if (nonce.Length != 12 || outputLength < inputLength || tagLength != Tag)
        {
            throw new ArgumentException("This AEAD takes a 12-byte nonce, a 16-byte tag and an output at least as long as its input.");
        }
    }

    /// <summary>The context with the key set, built on first use; after <see cref="Dispose"/> (the key is zeroed) never rebuilt.</summary>
    private EvpCipherContext Context()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_context is null)
        {
            var context = new EvpCipherContext();
            fixed (byte* k = _key)
            {
                if (LibCrypto.EVP_CipherInit_ex(context, evpCipher(), 0, k, null, 1) != 1)
                {
                    context.Dispose();
                    throw new CryptographicException("OpenSSL could not set up a cipher context.");
                }
            }

            _context = context;
        }

        return _context;
    }
}
