using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// One AES block (ECB, no padding) under a key used once: SIP023's TCP identity headers, whose key is per salt. One
/// cipher object per thread, re-keyed each time: a new one per block cost 280 bytes against 136, at about the same
/// 2 µs (<c>bench/Pipeline.Bench -- eih</c>).
/// </summary>
internal static class AesBlock
{
    public const int Size = 16;

    [ThreadStatic]
    private static Aes? t_aes;

    public static void Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> block, Span<byte> destination)
    {
        var aes = t_aes ??= Aes.Create();
        aes.SetKey(key);
        aes.EncryptEcb(block[..Size], destination[..Size], PaddingMode.None);
    }

    public static void Decrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> block, Span<byte> destination)
    {
        var aes = t_aes ??= Aes.Create();
        aes.SetKey(key);
        aes.DecryptEcb(block[..Size], destination[..Size], PaddingMode.None);
    }
}
