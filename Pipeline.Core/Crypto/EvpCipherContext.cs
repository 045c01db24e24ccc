using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// An OpenSSL <c>EVP_CIPHER_CTX</c> for a 12-byte-nonce, 16-byte-tag AEAD (AES-GCM, ChaCha20-Poly1305), freed when
/// released (or finalized with the thread or object that kept it). Each call holds the handle, so a release on
/// another thread cannot free it mid-call. A call with an empty key keeps the key already set; plaintext and
/// ciphertext may be the same memory.
/// </summary>
internal sealed unsafe class EvpCipherContext : SafeHandle
{
    private const int NonceSize = 12;
    private const int TagSize = 16;

    public EvpCipherContext()
        : base(IntPtr.Zero, ownsHandle: true) => SetHandle(LibCrypto.EVP_CIPHER_CTX_new());

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The cipher it was last set up for (<see cref="SetUp"/>).</summary>
    public nint Cipher { get; private set; }

    /// <summary>Chooses the cipher and, unless <paramref name="key"/> is empty, sets the key.</summary>
    public void SetUp(nint cipher, ReadOnlySpan<byte> key)
    {
        fixed (byte* k = key)
        {
            if (LibCrypto.EVP_CipherInit_ex(this, cipher, 0, key.IsEmpty ? null : k, null, 1) != 1)
            {
                throw new CryptographicException("OpenSSL could not set up a cipher context.");
            }
        }

        Cipher = cipher;
    }

    public void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        Check(nonce, ciphertext.Length, plaintext.Length, tag.Length);
        fixed (byte* k = key, n = nonce, input = plaintext, output = ciphertext, t = tag)
        {
            var length = 0;
            if (LibCrypto.EVP_CipherInit_ex(this, 0, 0, key.IsEmpty ? null : k, n, 1) != 1
                || LibCrypto.EVP_CipherUpdate(this, output, &length, input, plaintext.Length) != 1
                || LibCrypto.EVP_CipherFinal_ex(this, output + length, &length) != 1
                || LibCrypto.EVP_CIPHER_CTX_ctrl(this, LibCrypto.GetTag, TagSize, t) != 1)
            {
                throw new CryptographicException("OpenSSL failed to seal.");
            }
        }
    }

    /// <summary>False (never an exception), with the output cleared, when the tag does not verify; the context stays usable.</summary>
    public bool TryOpen(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        Check(nonce, plaintext.Length, ciphertext.Length, tag.Length);
        fixed (byte* k = key, n = nonce, input = ciphertext, output = plaintext, t = tag)
        {
            var length = 0;
            var opened = LibCrypto.EVP_CipherInit_ex(this, 0, 0, key.IsEmpty ? null : k, n, 0) == 1
                && LibCrypto.EVP_CipherUpdate(this, output, &length, input, ciphertext.Length) == 1
                && LibCrypto.EVP_CIPHER_CTX_ctrl(this, LibCrypto.SetTag, TagSize, t) == 1
                && LibCrypto.EVP_CipherFinal_ex(this, output + length, &length) == 1;
            if (!opened)
            {
                LibCrypto.ERR_clear_error();
                plaintext[..ciphertext.Length].Clear();
            }

            return opened;
        }
    }

    protected override bool ReleaseHandle()
    {
        LibCrypto.EVP_CIPHER_CTX_free(handle);
        return true;
    }

    private static void Check(ReadOnlySpan<byte> nonce, int outputLength, int inputLength, int tagLength)
    {
        if (nonce.Length != NonceSize || outputLength < inputLength || tagLength != TagSize)
        {
            throw new ArgumentException("This AEAD takes a 12-byte nonce, a 16-byte tag and an output at least as long as its input.");
        }
    }
}
