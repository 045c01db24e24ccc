using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// Theory data over the cipher catalog, so methods added to it later are covered without touching the tests.
/// The 2022 methods are left out of <see cref="All"/> and <see cref="Encrypting"/>: their request stream must start
/// with an address header, their response needs its request, and they have no UDP packet codec; they have tests of
/// their own (<see cref="Sip022"/>).
/// </summary>
internal static class CipherMethods
{
    public static TheoryData<string> All() => Names(static c => !c.Is2022);

    public static TheoryData<string> Aead() => Names(static c => c.Family == CipherFamily.Aead);

    /// <summary>Every method that changes the bytes: all but <c>none</c>/<c>plain</c> (and 2022, see above).</summary>
    public static TheoryData<string> Encrypting() => Names(static c => c.Name is not ("none" or "plain") && !c.Is2022);

    /// <summary>The Shadowsocks 2022 methods.</summary>
    public static TheoryData<string> Sip022() => Names(static c => c.Is2022);

    /// <summary>
    /// The AEAD methods on the platform's primitives, which encrypt and decrypt without allocating. The others
    /// (OCB and the original ChaCha20-Poly1305 on BouncyCastle, XChaCha with its per-chunk subkey) allocate a little
    /// per chunk: legacy methods, where that is accepted.
    /// </summary>
    public static TheoryData<string> AllocationFree() =>
        Names(static c => c.Name is "aes-128-gcm" or "aes-192-gcm" or "aes-256-gcm" or "chacha20-ietf-poly1305");

    public static CipherInfo Get(string name) =>
        CipherCatalog.TryGet(name, out var cipher) ? cipher : TestStreamCipher.Find(name);

    /// <summary>A master key the way the program makes one, from a fixed password.</summary>
    public static byte[] MasterKey(CipherInfo cipher) => KeyDerivation.MasterKeyFromPassword(cipher, "correct horse battery staple");

    private static TheoryData<string> Names(Func<CipherInfo, bool> filter)
    {
        var data = new TheoryData<string>();
        foreach (var cipher in CipherCatalog.All.Where(filter))
        {
            data.Add(cipher.Name);
        }

        if (filter(TestStreamCipher.WithIv))
        {
            data.Add(TestStreamCipher.WithIv.Name);
            data.Add(TestStreamCipher.WithoutIv.Name);
        }

        return data;
    }
}
