using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>One AES block (ECB, no padding) under a key used once: SIP023's TCP identity headers, whose key is per salt.</summary>
internal static class AesBlock
{
    public const int Size = 16;

    public static void Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> block, Span<byte> destination)
    {
        using var aes = Aes.Create();
        aes.SetKey(key);
        aes.EncryptEcb(block[..Size], destination[..Size], PaddingMode.None);
    }

    public static void Decrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> block, Span<byte> destination)
    {
        using var aes = Aes.Create();
        aes.SetKey(key);
        aes.DecryptEcb(block[..Size], destination[..Size], PaddingMode.None);
    }
}
