using System.Collections.Frozen;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// One-shot AEAD for UDP packets, where every packet has its own subkey (SIP004): the calling thread keeps one
/// OpenSSL context per cipher and re-keys it per packet, instead of building and freeing a context per packet.
/// Covers the methods OpenSSL implements (AES-GCM, ChaCha20-Poly1305 IETF); for the others, and where
/// <see cref="LibCrypto"/> is not available, <see cref="TryGet"/> is false and the caller uses
/// <see cref="CipherInfo.CreateAead"/>. Nonce 12 bytes, tag 16.
/// </summary>
internal sealed class PacketAead
{
    private static readonly FrozenDictionary<string, PacketAead> s_byName = Build();

    [ThreadStatic]
    private static EvpCipherContext? t_context;

    private readonly nint _evp;

    private PacketAead(nint evp) => _evp = evp;

    public static bool TryGet(CipherInfo cipher, out PacketAead aead) => s_byName.TryGetValue(cipher.Name, out aead!);

    /// <summary>Seals <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length; may be the same memory) and writes the tag.</summary>
    public void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag) =>
        Context().Seal(key, nonce, plaintext, ciphertext, tag);

    /// <summary>Opens a sealed packet; false (nothing in <paramref name="plaintext"/> valid, and it is cleared) when it does not authenticate.</summary>
    public bool TryOpen(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext) =>
        Context().TryOpen(key, nonce, ciphertext, tag, plaintext);

    private static FrozenDictionary<string, PacketAead> Build() => CipherCatalog.All
        .Select(static method => (method.Name, Evp: LibCrypto.AeadCipher(method.Name)))
        .Where(static method => method.Evp != 0)
        .ToFrozenDictionary(static method => method.Name, static method => new PacketAead(method.Evp));

    /// <summary>This thread's context, set up for this cipher (a thread switching ciphers sets it up again).</summary>
    private EvpCipherContext Context()
    {
        var context = t_context ??= new EvpCipherContext();
        if (context.Cipher != _evp)
        {
            context.SetUp(_evp, []);
        }

        return context;
    }
}
