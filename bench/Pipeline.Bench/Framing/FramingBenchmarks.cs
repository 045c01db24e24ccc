using BenchmarkDotNet.Attributes;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Bench.Framing;

/// <summary>
/// TCP framing throughput: one operation encodes or decodes a whole 1 MiB stream (the encoder fed
/// <see cref="PieceSize"/> pieces, the decoder fed 16 KiB reads) with a new encryptor/decryptor per operation (one
/// connection's setup: salt, subkey, buffers), so "Allocated" is per stream, not per chunk, and
/// MB/s = 1.048576 / Mean[s]. Methods come from the catalog by name; names not in it yet are skipped.
/// </summary>
[MemoryDiagnoser]
public class FramingBenchmarks
{
    private const int StreamSize = 1024 * 1024;

    /// <summary>Ciphertext is fed to the decoder in socket-sized reads of 16 KiB.</summary>
    private const int ReadSize = 16 * 1024;

    /// <summary>The stream methods measured besides every AEAD method.</summary>
    private static readonly string[] s_streamMethods = ["aes-256-cfb", "aes-256-ctr", "chacha20-ietf"];

    private CipherInfo _cipher = null!;
    private byte[] _key = [];
    private byte[] _plaintext = [];
    private byte[] _ciphertext = [];
    private byte[] _output = [];

    [ParamsSource(nameof(Methods))]
    public string Method { get; set; } = "aes-256-gcm";

    /// <summary>
    /// Plaintext piece handed to each Encrypt call: 16 KiB (one byte over the AEAD maximum, so every piece makes a
    /// full chunk and a 1-byte chunk) or 0x3FFF (one chunk per piece: what a relay reading 0x3FFF bytes gets).
    /// </summary>
    [Params(16 * 1024, 0x3FFF)]
    public int PieceSize { get; set; } = 16 * 1024;

    /// <summary>Every SIP004 AEAD method in the catalog (not the 2022 ones, which frame differently) and the chosen stream methods.</summary>
    public static IEnumerable<string> Methods() =>
        CipherCatalog.All
            .Where(static c => c.Family == CipherFamily.Aead && !c.Name.StartsWith("2022-", StringComparison.Ordinal))
            .Select(static c => c.Name)
            .Concat(s_streamMethods.Where(static name => CipherCatalog.TryGet(name, out _)));

    [GlobalSetup]
    public void Setup()
    {
        if (!CipherCatalog.TryGet(Method, out _cipher))
        {
            throw new InvalidOperationException($"{Method} is not in the catalog.");
        }

        _key = KeyDerivation.MasterKeyFromPassword(_cipher, "benchmark password");
        _plaintext = new byte[StreamSize];
        new Random(42).NextBytes(_plaintext);

        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(_cipher, _key);
        _ciphertext = new byte[encryptor.MaxOutputSize(PieceSize) * ((StreamSize / PieceSize) + 1)];
        var length = 0;
        for (var offset = 0; offset + PieceSize <= StreamSize; offset += PieceSize)
        {
            length += encryptor.Encrypt(_plaintext.AsSpan(offset, PieceSize), _ciphertext.AsSpan(length));
        }

        var tail = StreamSize % PieceSize;
        if (tail > 0)
        {
            length += encryptor.Encrypt(_plaintext.AsSpan(StreamSize - tail), _ciphertext.AsSpan(length));
        }

        _ciphertext = _ciphertext[..length];
        _output = new byte[encryptor.MaxOutputSize(PieceSize) + ReadSize];
    }

    /// <summary>
    /// The primitive alone, for comparison: one seal per piece with a fresh cipher per stream, no framing
    /// (AEAD methods only; stream methods run their keystream over the piece).
    /// </summary>
    [Benchmark(Baseline = true)]
    public int PrimitiveOnly()
    {
        var total = 0;
        if (_cipher.Family == CipherFamily.Aead)
        {
            using var aead = _cipher.CreateAead(_key.AsSpan(0, _cipher.KeySize));
            Span<byte> nonce = stackalloc byte[aead.NonceSize];
            nonce.Clear();
            for (var offset = 0; offset < StreamSize; offset += PieceSize)
            {
                var n = Math.Min(PieceSize, StreamSize - offset);
                aead.Encrypt(nonce, _plaintext.AsSpan(offset, n), _output.AsSpan(0, n), _output.AsSpan(n, aead.TagSize));
                nonce[0]++;
                total += n;
            }
        }
        else
        {
            using var stream = _cipher.CreateStream(_key, new byte[_cipher.SaltSize], encrypt: true);
            for (var offset = 0; offset < StreamSize; offset += PieceSize)
            {
                var n = Math.Min(PieceSize, StreamSize - offset);
                stream.Process(_plaintext.AsSpan(offset, n), _output.AsSpan(0, n));
                total += n;
            }
        }

        return total;
    }

    [Benchmark]
    public int Encode()
    {
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(_cipher, _key);
        var total = 0;
        for (var offset = 0; offset < StreamSize; offset += PieceSize)
        {
            total += encryptor.Encrypt(_plaintext.AsSpan(offset, Math.Min(PieceSize, StreamSize - offset)), _output);
        }

        return total;
    }

    [Benchmark]
    public int Decode()
    {
        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(_cipher, _key);
        var total = 0;
        var ciphertext = _ciphertext.AsSpan();
        while (!ciphertext.IsEmpty)
        {
            var n = Math.Min(ReadSize, ciphertext.Length);
            if (decryptor.Decrypt(ciphertext[..n], _output, out var written) != DecryptStatus.Ok)
            {
                throw new InvalidOperationException("decrypt failed");
            }

            total += written;
            ciphertext = ciphertext[n..];
        }

        return total;
    }
}
