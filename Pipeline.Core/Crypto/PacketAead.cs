using System.Collections.Frozen;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// One-shot AEAD for UDP packets, where every packet has its own subkey (SIP004): the calling thread keeps one
/// OpenSSL context per cipher and re-keys it per packet, instead of building and freeing a context per packet.
/// Covers the methods OpenSSL implements (AES-GCM, ChaCha20-Poly1305 IETF); for the others, and where
/// <see cref="LibCrypto"/> is not available, <see cref="TryGet"/> is false and the caller uses
/// <see cref="CipherInfo.CreateAead"/>. Nonce 12 bytes, tag 16.
/// </summary>
internal sealed unsafe class PacketAead
{
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private static readonly FrozenDictionary<string, PacketAead> s_byName = Build();

    [ThreadStatic]
    private static EvpCipherContext? t_context;

    private readonly Func<nint> _cipher;
    private nint _evp;

    private PacketAead(Func<nint> cipher) => _cipher = cipher;

    public static bool TryGet(CipherInfo cipher, out PacketAead aead) => s_byName.TryGetValue(cipher.Name, out aead!);

    /// <summary>Seals <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length; may be the same memory) and writes the tag.</summary>
    public void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        Check(nonce, ciphertext.Length, plaintext.Length, tag.Length);
        var context = Context();
        fixed (byte* k = key, n = nonce, input = plaintext, output = ciphertext, t = tag)
        {
            var length = 0;
            if (LibCrypto.EVP_CipherInit_ex(context, 0, 0, k, n, 1) != 1
                || LibCrypto.EVP_CipherUpdate(context, output, &length, input, plaintext.Length) != 1
                || LibCrypto.EVP_CipherFinal_ex(context, output + length, &length) != 1
                || LibCrypto.EVP_CIPHER_CTX_ctrl(context, LibCrypto.GetTag, TagSize, t) != 1)
            {
                throw new InvalidOperationException("OpenSSL failed to seal a packet.");
            }
        }
    }

    /// <summary>Opens a sealed packet; false (nothing in <paramref name="plaintext"/> valid, and it is cleared) when it does not authenticate.</summary>
    public bool TryOpen(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        Check(nonce, plaintext.Length, ciphertext.Length, tag.Length);
        var context = Context();
        fixed (byte* k = key, n = nonce, input = ciphertext, output = plaintext, t = tag)
        {
            var length = 0;
            var opened = LibCrypto.EVP_CipherInit_ex(context, 0, 0, k, n, 0) == 1
                && LibCrypto.EVP_CipherUpdate(context, output, &length, input, ciphertext.Length) == 1
                && LibCrypto.EVP_CIPHER_CTX_ctrl(context, LibCrypto.SetTag, TagSize, t) == 1
                && LibCrypto.EVP_CipherFinal_ex(context, output + length, &length) == 1;
            if (!opened)
            {
                LibCrypto.ERR_clear_error();
                plaintext.Clear();
            }

            return opened;
        }
    }

    private static void Check(ReadOnlySpan<byte> nonce, int outputLength, int inputLength, int tagLength)
    {
        if (nonce.Length != NonceSize || outputLength < inputLength || tagLength != TagSize)
        {
            throw new ArgumentException("A packet AEAD takes a 12-byte nonce, a 16-byte tag and an output as long as its input.");
        }
    }

    private static FrozenDictionary<string, PacketAead> Build()
    {
        if (!LibCrypto.IsAvailable)
        {
            return FrozenDictionary<string, PacketAead>.Empty;
        }

        return new Dictionary<string, PacketAead>
        {
            ["aes-128-gcm"] = new(LibCrypto.EVP_aes_128_gcm),
            ["aes-192-gcm"] = new(LibCrypto.EVP_aes_192_gcm),
            ["aes-256-gcm"] = new(LibCrypto.EVP_aes_256_gcm),
            ["chacha20-ietf-poly1305"] = new(LibCrypto.EVP_chacha20_poly1305),
        }.ToFrozenDictionary();
    }

    /// <summary>This thread's context, set up for this cipher (a thread switching ciphers sets it up again).</summary>
    private nint Context()
    {
        var evp = _evp;
        if (evp == 0)
        {
            _evp = evp = _cipher();
        }

        var context = t_context ??= new EvpCipherContext();
        if (context.Cipher != evp)
        {
            if (LibCrypto.EVP_CipherInit_ex(context.DangerousGetHandle(), evp, 0, null, null, 1) != 1)
            {
                throw new InvalidOperationException("OpenSSL could not set up a cipher context.");
            }

            context.Cipher = evp;
        }

        return context.DangerousGetHandle();
    }
}
