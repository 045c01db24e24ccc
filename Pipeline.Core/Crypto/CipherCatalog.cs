using System.Collections.Frozen;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Parameters;
using Shadowsocks.Pipeline.Core.Configuration;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// Every method this program speaks: method name to key size, salt/IV size and factory. The union of what
/// shadowsocks-libev 3.3.5, Python shadowsocks 3.0, shadowsocks-rust and Node shadowsocks accept (PROTOCOL.md),
/// with their sizes. Stream factories get the master key and that direction's IV.
/// </summary>
internal static class CipherCatalog
{
    private static readonly CipherInfo[] s_all =
    [
        // AEAD (SIP004): salt size = key size.
        // AES-GCM and ChaCha20-Poly1305 straight on OpenSSL's EVP calls where the library loads (4–8 % more bulk
        // throughput than .NET's wrappers, bench/RESULTS.md), else on .NET's classes: the same bytes either way.
        OpenSslOr("aes-128-gcm", 16, static k => new DotNetAesGcm(k.Span)),
        OpenSslOr("aes-192-gcm", 24, static k => new DotNetAesGcm(k.Span)),
        OpenSslOr("aes-256-gcm", 32, static k => new DotNetAesGcm(k.Span)),
        OpenSslOr("chacha20-ietf-poly1305", 32, static k => new DotNetChaCha20Poly1305(k.Span)),
        Aead("xchacha20-ietf-poly1305", 32, static k => new DotNetXChaCha20Poly1305(k.Span)),
        Aead("chacha20-poly1305", 32, static k => new ChaCha20Poly1305Original(k.Span)),
        Aead("aes-128-ocb", 16, static k => new BouncyAesOcb(k.Span)),
        Aead("aes-192-ocb", 24, static k => new BouncyAesOcb(k.Span)),
        Aead("aes-256-ocb", 32, static k => new BouncyAesOcb(k.Span)),

        // Shadowsocks 2022 (SIP022), TCP: the same AEADs under BLAKE3 subkeys of a base64 PSK.
        OpenSslOr("2022-blake3-aes-128-gcm", 16, static k => new DotNetAesGcm(k.Span), "aes-128-gcm"),
        OpenSslOr("2022-blake3-aes-256-gcm", 32, static k => new DotNetAesGcm(k.Span), "aes-256-gcm"),
        OpenSslOr("2022-blake3-chacha20-poly1305", 32, static k => new DotNetChaCha20Poly1305(k.Span), "chacha20-ietf-poly1305"),

        // Stream: AES.
        .. AesModes(16), .. AesModes(24), .. AesModes(32),

        // Stream: Camellia.
        .. CamelliaModes(16), .. CamelliaModes(24), .. CamelliaModes(32),

        // Stream: 64-bit block ciphers in CFB-64, SEED in CFB-128.
        Stream("bf-cfb", 16, 8, static (k, iv, e) => new CfbStreamCipher(Block(new BlowfishEngine(), k), iv.Span, e)),
        Stream("cast5-cfb", 16, 8, static (k, iv, e) => new CfbStreamCipher(Block(new Cast5Engine(), k), iv.Span, e)),
        Stream("des-cfb", 8, 8, static (k, iv, e) => new CfbStreamCipher(Block(new DesEngine(), k), iv.Span, e)),
        Stream("idea-cfb", 16, 8, static (k, iv, e) => new CfbStreamCipher(Block(new IdeaEngine(), k), iv.Span, e)),
        Stream("rc2-cfb", 16, 8, static (k, iv, e) => new CfbStreamCipher(Block(new RC2Engine(), k), iv.Span, e)),
        Stream("seed-cfb", 16, 16, static (k, iv, e) => new CfbStreamCipher(Block(new SeedEngine(), k), iv.Span, e)),

        // Stream: Salsa20 family (libsodium's constructions).
        Stream("salsa20", 32, 8, static (k, iv, _) => Keystream(new Salsa20Engine(), k.Span, iv.Span)),
        Stream("chacha20", 32, 8, static (k, iv, _) => Keystream(new ChaChaEngine(), k.Span, iv.Span)),
        Stream("chacha20-ietf", 32, 12, static (k, iv, _) => Keystream(new ChaCha7539Engine(), k.Span, iv.Span)),
        Stream("xchacha20", 32, 24, static (k, iv, _) => XChaCha20(k.Span, iv.Span)),

        // Stream: RC4 and the substitution table.
        Stream("rc4", 16, 0, static (k, _, _) => Keystream(new RC4Engine(), k.Span, [])),
        Stream("rc4-md5", 16, 16, static (k, iv, _) => Rc4Md5(k.Span, iv.Span)),
        Stream("table", 0, 0, static (k, _, e) => TableStreamCipher.Create(k.Span, e)),
        Stream("none", 0, 0, static (_, _, _) => new NoneStreamCipher()),
        Stream("plain", 0, 0, static (_, _, _) => new NoneStreamCipher()),
    ];

    private static readonly FrozenDictionary<string, CipherInfo> s_byName =
        s_all.ToFrozenDictionary(static c => c.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// SIP022 § 4 lets an implementation offer these (shadowsocks-rust does, in an extra build); this one does not, and
    /// says so rather than calling them unknown.
    /// </summary>
    private static readonly FrozenSet<string> s_optional2022NotImplemented =
        FrozenSet.ToFrozenSet(["2022-blake3-chacha8-poly1305", "2022-blake3-chacha12-poly1305"], StringComparer.OrdinalIgnoreCase);

    /// <summary>All methods, in catalog order.</summary>
    public static IReadOnlyList<CipherInfo> All => s_all;

    public static bool TryGet(string name, out CipherInfo cipher)
    {
        if (s_byName.TryGetValue(name.Trim(), out var found))
        {
            cipher = found;
            return true;
        }

        cipher = null!;
        return false;
    }

    /// <summary>Looks a method up, or returns one line naming close matches.</summary>
    public static bool TryGet(string name, out CipherInfo cipher, out string? error)
    {
        if (TryGet(name, out cipher))
        {
            error = null;
            return true;
        }

        if (s_optional2022NotImplemented.Contains(name.Trim()))
        {
            error = $"method: {name.Trim().ToLowerInvariant()} is one of SIP022's optional reduced-round ChaCha methods, which this program "
                + "does not implement; use 2022-blake3-chacha20-poly1305 (or 2022-blake3-aes-128-gcm, 2022-blake3-aes-256-gcm) on both ends";
            return false;
        }

        var close = s_all
            .Select(c => (c.Name, Distance: EditDistance.Between(name.ToLowerInvariant(), c.Name)))
            .OrderBy(t => t.Distance)
            .ThenBy(t => t.Name, StringComparer.Ordinal)
            .Take(3)
            .Select(t => t.Name);
        error = $"method: unknown method '{name}'; did you mean {string.Join(", ", close)}? (list them with: shadowsocks methods)";
        return false;
    }

    private static CipherInfo Aead(string name, int keySize, Func<ReadOnlyMemory<byte>, IAeadCipher> factory) =>
        new(name, CipherFamily.Aead, keySize, keySize, factory, null);

    private static CipherInfo OpenSslOr(string name, int keySize, Func<ReadOnlyMemory<byte>, IAeadCipher> fallback, string? aeadOf2022 = null)
    {
        var evp = LibCrypto.AeadCipher(aeadOf2022 ?? name);
        Func<ReadOnlyMemory<byte>, IAeadCipher> factory = evp == 0 ? fallback : k => new OpenSslAead(evp, k.Span);
        return aeadOf2022 is null ? Aead(name, keySize, factory) : new(name, CipherFamily.Aead2022, keySize, keySize, factory, null);
    }

    private static CipherInfo Stream(
        string name, int keySize, int ivSize, Func<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>, bool, IStreamCipher> factory) =>
        new(name, CipherFamily.Stream, keySize, ivSize, null, factory);

    private static CipherInfo[] AesModes(int keySize)
    {
        var bits = keySize * 8;
        return
        [
            Stream($"aes-{bits}-cfb", keySize, 16, static (k, iv, e) => new CfbStreamCipher(Block(AesUtilities.CreateEngine(), k), iv.Span, e)),
            Stream($"aes-{bits}-ctr", keySize, 16, static (k, iv, _) => new CtrStreamCipher(k.Span, iv.Span)),
            Stream($"aes-{bits}-ofb", keySize, 16, static (k, iv, _) => new OfbStreamCipher(Block(AesUtilities.CreateEngine(), k), iv.Span)),
            Stream($"aes-{bits}-cfb8", keySize, 16, static (k, iv, e) => new Cfb8StreamCipher(Block(AesUtilities.CreateEngine(), k), iv.Span, e)),
            Stream($"aes-{bits}-cfb1", keySize, 16, static (k, iv, e) => new Cfb1StreamCipher(Block(AesUtilities.CreateEngine(), k), iv.Span, e)),
        ];
    }

    private static CipherInfo[] CamelliaModes(int keySize)
    {
        var bits = keySize * 8;
        return
        [
            Stream($"camellia-{bits}-cfb", keySize, 16, static (k, iv, e) => new CfbStreamCipher(Block(new CamelliaEngine(), k), iv.Span, e)),
            Stream($"camellia-{bits}-ctr", keySize, 16, static (k, iv, _) => new CtrStreamCipher(Block(new CamelliaEngine(), k), iv.Span)),
            Stream($"camellia-{bits}-ofb", keySize, 16, static (k, iv, _) => new OfbStreamCipher(Block(new CamelliaEngine(), k), iv.Span)),
        ];
    }

    /// <summary>A block cipher keyed for encryption: CFB, OFB and CTR only ever run the forward direction.</summary>
    private static IBlockCipher Block(IBlockCipher engine, ReadOnlyMemory<byte> key)
    {
        engine.Init(true, new KeyParameter(key.Span));
        return engine;
    }

    private static BouncyStreamCipher Keystream(Org.BouncyCastle.Crypto.IStreamCipher engine, ReadOnlySpan<byte> key, ReadOnlySpan<byte> iv)
    {
        ICipherParameters parameters = iv.IsEmpty ? new KeyParameter(key) : new ParametersWithIV(new KeyParameter(key), iv);
        engine.Init(true, parameters);
        return new BouncyStreamCipher(engine);
    }

    /// <summary>libsodium's <c>crypto_stream_xchacha20</c>: ChaCha20 (8-byte nonce) under HChaCha20(key, iv[0..16]) with nonce iv[16..24].</summary>
    private static BouncyStreamCipher XChaCha20(ReadOnlySpan<byte> key, ReadOnlySpan<byte> iv)
    {
        Span<byte> subkey = stackalloc byte[32];
        HChaCha20.DeriveSubkey(key, iv[..16], subkey);
        var cipher = Keystream(new ChaChaEngine(), subkey, iv[16..]);
        CryptographicOperations.ZeroMemory(subkey);
        return cipher;
    }

    /// <summary><c>rc4-md5</c>: RC4 keyed with MD5(key || iv).</summary>
    private static BouncyStreamCipher Rc4Md5(ReadOnlySpan<byte> key, ReadOnlySpan<byte> iv)
    {
        var material = new byte[key.Length + iv.Length];
        key.CopyTo(material);
        iv.CopyTo(material.AsSpan(key.Length));
        return Keystream(new RC4Engine(), MD5.HashData(material), []);
    }
}
