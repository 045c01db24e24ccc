using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Parameters;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>Master keys and session subkeys (PROTOCOL.md § Keys).</summary>
internal static class KeyDerivation
{
    /// <summary>HKDF info string of SIP007.</summary>
    private static readonly byte[] s_subkeyInfo = "ss-subkey"u8.ToArray();

    /// <summary>SIP022: the BLAKE3 key-derivation context of a session subkey.</summary>
    private static readonly byte[] s_2022Context = "shadowsocks 2022 session subkey"u8.ToArray();

    /// <summary>SIP023: the BLAKE3 key-derivation context of an identity header's subkey.</summary>
    private static readonly byte[] s_identityContext = "shadowsocks 2022 identity subkey"u8.ToArray();

    /// <summary>
    /// This thread's BLAKE3 in derive-key mode, its context already hashed: a new digest per subkey cost 4 µs and
    /// 712 bytes, this 2 µs and none (the review of the 2022 methods, bench/RESULTS.md); <c>DoFinal</c> resets it.
    /// </summary>
    [ThreadStatic]
    private static Blake3Digest? t_blake3;

    /// <summary>The same for SIP023's identity subkeys.</summary>
    [ThreadStatic]
    private static Blake3Digest? t_blake3Identity;

    /// <summary>
    /// OpenSSL <c>EVP_BytesToKey(MD5, no salt, count 1)</c>: D_i = MD5(D_{i-1} || password), concatenated to <paramref name="keyLength"/>.
    /// </summary>
    public static byte[] EvpBytesToKey(ReadOnlySpan<byte> password, int keyLength)
    {
        var key = new byte[keyLength];
        Span<byte> block = stackalloc byte[MD5.HashSizeInBytes];
        var input = new byte[MD5.HashSizeInBytes + password.Length];
        password.CopyTo(input.AsSpan(MD5.HashSizeInBytes));
        var written = 0;
        var first = true;
        while (written < keyLength)
        {
            var data = first ? input.AsSpan(MD5.HashSizeInBytes) : input;
            MD5.HashData(data, block);
            block.CopyTo(input);
            var n = Math.Min(block.Length, keyLength - written);
            block[..n].CopyTo(key.AsSpan(written));
            written += n;
            first = false;
        }

        return key;
    }

    /// <summary>The master key for a method from a password: EVP_BytesToKey, or the password bytes for methods with key size 0.</summary>
    public static byte[] MasterKeyFromPassword(CipherInfo cipher, string password)
    {
        var bytes = Encoding.UTF8.GetBytes(password);
        return cipher.KeySize == 0 ? bytes : EvpBytesToKey(bytes, cipher.KeySize);
    }

    /// <summary>SIP007 session subkey: HKDF-SHA1(key = master, salt = salt, info = "ss-subkey").</summary>
    public static void SessionSubkey(ReadOnlySpan<byte> masterKey, ReadOnlySpan<byte> salt, Span<byte> subkey) =>
        HkdfSha1(masterKey, salt, s_subkeyInfo, subkey);

    /// <summary>
    /// SIP022 session subkey: BLAKE3 <c>derive_key(context "shadowsocks 2022 session subkey", psk || salt)</c>, as many
    /// bytes as <paramref name="subkey"/> holds (at most 32; a shorter key is the output's prefix, as BLAKE3's output is
    /// extendable).
    /// </summary>
    public static void Blake3SessionSubkey(ReadOnlySpan<byte> psk, ReadOnlySpan<byte> salt, Span<byte> subkey) =>
        Blake3DeriveKey(t_blake3 ??= DeriveKeyDigest(s_2022Context), psk, salt, subkey);

    /// <summary>
    /// SIP023 identity subkey (TCP): BLAKE3 <c>derive_key(context "shadowsocks 2022 identity subkey", ipsk || salt)</c>,
    /// as many bytes as <paramref name="subkey"/> holds.
    /// </summary>
    public static void Blake3IdentitySubkey(ReadOnlySpan<byte> identityKey, ReadOnlySpan<byte> salt, Span<byte> subkey) =>
        Blake3DeriveKey(t_blake3Identity ??= DeriveKeyDigest(s_identityContext), identityKey, salt, subkey);

    /// <summary>SIP023: the first 16 bytes of the plain BLAKE3 hash of a key, the name an identity header carries.</summary>
    public static byte[] Blake3KeyHash(ReadOnlySpan<byte> key)
    {
        var digest = new Blake3Digest(256);
        digest.BlockUpdate(key);
        Span<byte> output = stackalloc byte[32];
        digest.DoFinal(output);
        return output[..16].ToArray();
    }

    private static Blake3Digest DeriveKeyDigest(byte[] context)
    {
        var digest = new Blake3Digest(256);
        digest.Init(Blake3Parameters.Context(context));
        return digest;
    }

    private static void Blake3DeriveKey(Blake3Digest digest, ReadOnlySpan<byte> psk, ReadOnlySpan<byte> salt, Span<byte> subkey)
    {
        digest.BlockUpdate(psk);
        digest.BlockUpdate(salt);
        Span<byte> output = stackalloc byte[32];
        digest.DoFinal(output);
        output[..subkey.Length].CopyTo(subkey);
        CryptographicOperations.ZeroMemory(output);
    }

    /// <summary>HKDF (RFC 5869) with SHA-1: extract with <paramref name="salt"/>, expand with <paramref name="info"/> to fill <paramref name="output"/>.</summary>
    public static void HkdfSha1(ReadOnlySpan<byte> inputKey, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> info, Span<byte> output) =>
        Sha1Hmac.Hkdf(inputKey, salt, info, output);

    /// <summary>
    /// The master key a password stands for: EVP_BytesToKey (or the bytes, see <see cref="MasterKeyFromPassword"/>),
    /// except for a 2022 method, whose key is given, never derived (SIP022 § 2.1): its password is the base64 key
    /// itself, as shadowsocks-rust reads it; anything else gets a one-line error naming the password.
    /// </summary>
    public static bool TryMasterKeyFromPassword(CipherInfo cipher, string password, out byte[] key, out string? error)
    {
        if (!cipher.Is2022)
        {
            key = MasterKeyFromPassword(cipher, password);
            error = null;
            return true;
        }

        if (TryParseBase64Key(cipher, password, out key, out error, field: "password"))
        {
            return true;
        }

        error += "; a 2022 method's password is its base64 key, not a passphrase";
        return false;
    }

    /// <summary>SIP023: the most identity keys a client's chain holds (the UDP datagrams' headroom has room for their headers).</summary>
    public const int MaxIdentityKeys = 4;

    /// <summary>
    /// A client's keys from its password: as <see cref="TryMasterKeyFromPassword"/>, except that a 2022 AES method's
    /// password may be a chain <c>iPSK:...:uPSK</c> of base64 keys (SIP023, as shadowsocks-rust reads it): the last is
    /// the user's key, returned as <paramref name="key"/>, and the ones before it the identity keys of the hops on the way.
    /// </summary>
    public static bool TryClientKeysFromPassword(
        CipherInfo cipher, string password, out byte[] key, out byte[][] identityKeys, out string? error, string field = "password")
    {
        identityKeys = [];
        if (!cipher.Is2022 || !password.Contains(':', StringComparison.Ordinal))
        {
            return field == "password"
                ? TryMasterKeyFromPassword(cipher, password, out key, out error)
                : TryParseBase64Key(cipher, password, out key, out error, field);
        }

        key = [];
        if (!cipher.HasIdentityHeaders)
        {
            error = $"{field}: a chain of keys (iPSK:uPSK) needs identity headers, which {cipher.Name} does not have (SIP023: the 2022 AES methods only); give one key";
            return false;
        }

        var parts = password.Split(':');
        if (parts.Length - 1 > MaxIdentityKeys)
        {
            error = $"{field}: {parts.Length - 1} identity keys before the user's; at most {MaxIdentityKeys} (one per hop on the way)";
            return false;
        }

        var keys = new byte[parts.Length][];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!TryParseBase64Key(cipher, parts[i], out keys[i], out error, field))
            {
                error += $" (part {i + 1} of {parts.Length} of iPSK:...:uPSK)";
                return false;
            }
        }

        key = keys[^1];
        identityKeys = keys[..^1];
        error = null;
        return true;
    }

    /// <summary>
    /// Decodes a <c>--key</c> value (or another <paramref name="field"/> that holds one): standard or URL-safe base64 of
    /// exactly the method's key length. Returns a one-line error, opened with the field's name, otherwise.
    /// </summary>
    public static bool TryParseBase64Key(CipherInfo cipher, string text, out byte[] key, out string? error, string field = "key")
    {
        key = [];
        var normalized = text.Trim().Replace('-', '+').Replace('_', '/');
        normalized = normalized.PadRight(normalized.Length + ((4 - (normalized.Length % 4)) % 4), '=');
        byte[] decoded;
        try
        {
            decoded = Convert.FromBase64String(normalized);
        }
        catch (FormatException)
        {
            error = $"{field}: not valid base64; expected base64 of {cipher.KeySize} bytes for {cipher.Name} (make one with: shadowsocks genkey -m {cipher.Name})";
            return false;
        }

        if (cipher.KeySize != 0 && decoded.Length != cipher.KeySize)
        {
            error = $"{field}: decodes to {decoded.Length} bytes, but {cipher.Name} needs exactly {cipher.KeySize} bytes (make one with: shadowsocks genkey -m {cipher.Name})";
            return false;
        }

        key = decoded;
        error = null;
        return true;
    }
}
