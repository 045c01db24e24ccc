using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Parameters;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// AES-ECB, one 16-byte block at a time, under a fixed key: SIP022's UDP separate headers and SIP023's UDP identity
/// headers. BouncyCastle's engine (AES-NI where the CPU has it) takes about 10 ns a block and allocates nothing, where
/// .NET's <c>Aes.EncryptEcb</c> on a kept object took about 1 µs and 64 bytes (<c>bench/Pipeline.Bench -- eih</c>).
/// Thread-safe. Each direction's key schedule is made at its first use: a multi-user server holds one of these per user,
/// and most only ever encrypt. Only with the x86 AES instructions: elsewhere BouncyCastle's engine is its table-driven
/// one, whose timing depends on the key and the input, and the blocks go through .NET's (OpenSSL's) AES instead.
/// </summary>
internal sealed class AesEcb(byte[] key)
{
    public const int BlockSize = 16;

    /// <summary>Whether BouncyCastle's engine runs on the AES instructions (its <c>AesEngine_X86</c>).</summary>
    internal static readonly bool Hardware = System.Runtime.Intrinsics.X86.Aes.IsSupported;

    private IBlockCipher? _encrypt;
    private IBlockCipher? _decrypt;
    private Aes? _platform;

    public void Encrypt(ReadOnlySpan<byte> block, Span<byte> destination) => Process(forEncryption: true, block, destination);

    public void Decrypt(ReadOnlySpan<byte> block, Span<byte> destination) => Process(forEncryption: false, block, destination);

    private void Process(bool forEncryption, ReadOnlySpan<byte> block, Span<byte> destination)
    {
        if (!Hardware)
        {
            var aes = Platform();
            lock (aes)
            {
                _ = forEncryption
                    ? aes.EncryptEcb(block[..BlockSize], destination[..BlockSize], PaddingMode.None)
                    : aes.DecryptEcb(block[..BlockSize], destination[..BlockSize], PaddingMode.None);
            }

            return;
        }

        var engine = forEncryption ? _encrypt ?? Engine(ref _encrypt, forEncryption) : _decrypt ?? Engine(ref _decrypt, forEncryption);
        lock (engine)
        {
            engine.ProcessBlock(block[..BlockSize], destination[..BlockSize]);
        }
    }

    private Aes Platform()
    {
        if (_platform is { } made)
        {
            return made;
        }

        var aes = Aes.Create();
        aes.Key = key;
        return Interlocked.CompareExchange(ref _platform, aes, null) ?? aes; // a loser of the race is left to the collector
    }

    private IBlockCipher Engine(ref IBlockCipher? slot, bool forEncryption)
    {
        var engine = AesUtilities.CreateEngine();
        engine.Init(forEncryption, new KeyParameter(key));
        return Interlocked.CompareExchange(ref slot, engine, null) ?? engine;
    }
}
