using System.Runtime.InteropServices;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// The few OpenSSL calls that .NET's cryptography wraps too expensively for per-packet use: .NET's HKDF and HMAC
/// fetch a provider algorithm and build parameter lists on every call (≈ 2 µs for one SIP007 subkey, against
/// 0.55 µs over the low-level SHA-1 functions on the same library), and an <c>AesGcm</c> cannot be re-keyed, so each
/// UDP packet paid a new OpenSSL context (≈ 1.3 µs; re-keying a kept one costs ≈ 0.1 µs). The library is the one .NET
/// itself uses on Linux (libcrypto.so.3); where it cannot be loaded, <see cref="IsAvailable"/> is false and callers
/// use the .NET path, which gives the same bytes.
/// </summary>
internal static unsafe partial class LibCrypto
{
    private const string Library = "libcrypto.so.3";

    /// <summary>EVP_CTRL_AEAD_GET_TAG / EVP_CTRL_AEAD_SET_TAG.</summary>
    public const int GetTag = 0x10;
    public const int SetTag = 0x11;

    /// <summary>sizeof(SHA_CTX) is 96 bytes; room to spare.</summary>
    public const int Sha1ContextSize = 128;

    private static readonly Lazy<bool> s_available = new(Probe);

    public static bool IsAvailable => s_available.Value;

    /// <summary>
    /// OpenSSL's <c>EVP_CIPHER</c> for a Shadowsocks AEAD method it implements; 0 for the others, or without the library.
    /// Fetched from the default provider once and kept for the life of the process: a context set up with the legacy
    /// <c>EVP_aes_256_gcm()</c> looks the provider's implementation up by name on every set-up (0.40 against 0.21 µs
    /// for a new context here), and every connection sets up two or more.
    /// </summary>
    public static nint AeadCipher(string method) => !IsAvailable ? 0 : method switch
    {
        "aes-128-gcm" => Fetched("AES-128-GCM", EVP_aes_128_gcm),
        "aes-192-gcm" => Fetched("AES-192-GCM", EVP_aes_192_gcm),
        "aes-256-gcm" => Fetched("AES-256-GCM", EVP_aes_256_gcm),
        "chacha20-ietf-poly1305" => Fetched("ChaCha20-Poly1305", EVP_chacha20_poly1305),
        _ => 0,
    };

    /// <summary>The provider's implementation of <paramref name="name"/>, or the legacy one where fetching finds none.</summary>
    private static nint Fetched(string name, Func<nint> legacy)
    {
        var fetched = EVP_CIPHER_fetch(0, name, null);
        return fetched != 0 ? fetched : legacy();
    }

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint EVP_CIPHER_fetch(nint libraryContext, string algorithm, string? properties);

    [LibraryImport(Library)]
    public static partial int SHA1_Init(byte* context);

    [LibraryImport(Library)]
    public static partial int SHA1_Update(byte* context, byte* data, nuint length);

    [LibraryImport(Library)]
    public static partial int SHA1_Final(byte* digest, byte* context);

    [LibraryImport(Library)]
    public static partial nint EVP_CIPHER_CTX_new();

    [LibraryImport(Library)]
    public static partial void EVP_CIPHER_CTX_free(nint context);

    [LibraryImport(Library)]
    public static partial nint EVP_aes_128_gcm();

    [LibraryImport(Library)]
    public static partial nint EVP_aes_192_gcm();

    [LibraryImport(Library)]
    public static partial nint EVP_aes_256_gcm();

    [LibraryImport(Library)]
    public static partial nint EVP_chacha20_poly1305();

    // A context is passed as its SafeHandle: held for the call, so a release on another thread cannot free it mid-call.
    [LibraryImport(Library)]
    public static partial int EVP_CipherInit_ex(SafeHandle context, nint cipher, nint engine, byte* key, byte* iv, int encrypt);

    [LibraryImport(Library)]
    public static partial int EVP_CipherUpdate(SafeHandle context, byte* output, int* outputLength, byte* input, int inputLength);

    [LibraryImport(Library)]
    public static partial int EVP_CipherFinal_ex(SafeHandle context, byte* output, int* outputLength);

    [LibraryImport(Library)]
    public static partial int EVP_CIPHER_CTX_ctrl(SafeHandle context, int type, int argument, void* pointer);

    /// <summary>Empties the calling thread's OpenSSL error queue (after a failed call, so nothing stale is left for the next caller).</summary>
    [LibraryImport(Library)]
    public static partial void ERR_clear_error();

    private static bool Probe()
    {
        try
        {
            var context = stackalloc byte[Sha1ContextSize];
            return SHA1_Init(context) == 1 && EVP_aes_256_gcm() != 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}
