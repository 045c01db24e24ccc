using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Protocol;

/// <summary>Theory data over the cipher catalog, so methods added to it later are covered without touching the tests.</summary>
internal static class CipherMethods
{
    public static TheoryData<string> All() => Names(static _ => true);

    public static TheoryData<string> Aead() => Names(static c => c.Family == CipherFamily.Aead);

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
