using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Parameters;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// One AES block (ECB, no padding) under a key used once: SIP023's TCP identity headers, whose key is per salt. One
/// engine per thread and direction, keyed anew each time (see <see cref="AesEcb"/> for why BouncyCastle's, and when not).
/// </summary>
internal static class AesBlock
{
    public const int Size = AesEcb.BlockSize;

    [ThreadStatic]
    private static IBlockCipher? t_encrypt;

    [ThreadStatic]
    private static IBlockCipher? t_decrypt;

    public static void Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> block, Span<byte> destination) =>
        Process(forEncryption: true, key, block, destination);

    public static void Decrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> block, Span<byte> destination) =>
        Process(forEncryption: false, key, block, destination);

    private static void Process(bool forEncryption, ReadOnlySpan<byte> key, ReadOnlySpan<byte> block, Span<byte> destination)
    {
        if (!AesEcb.Hardware)
        {
            using var aes = Aes.Create();
            aes.SetKey(key);
            _ = forEncryption
                ? aes.EncryptEcb(block[..Size], destination[..Size], PaddingMode.None)
                : aes.DecryptEcb(block[..Size], destination[..Size], PaddingMode.None);
            return;
        }

        var engine = forEncryption ? t_encrypt ??= AesUtilities.CreateEngine() : t_decrypt ??= AesUtilities.CreateEngine();
        engine.Init(forEncryption, new KeyParameter(key));
        engine.ProcessBlock(block[..Size], destination[..Size]);
    }
}
