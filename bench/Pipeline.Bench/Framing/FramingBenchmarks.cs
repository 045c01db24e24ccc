using BenchmarkDotNet.Attributes;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Bench.Framing;

/// <summary>
/// TCP framing throughput: one operation encodes or decodes a whole 1 MiB stream fed in 16 KiB pieces, with a new
/// encryptor/decryptor per operation (one connection's setup: salt, subkey, buffers), so "Allocated" is per stream
/// and MB/s = 1.048576 / Mean[s]. Methods come from the catalog by name; names not in it yet are skipped.
/// </summary>
[MemoryDiagnoser]
public class FramingBenchmarks
{
    private const int StreamSize = 1024 * 1024;
    private const int PieceSize = 16 * 1024;

    /// <summary>The stream methods measured besides every AEAD method.</summary>
    private static readonly string[] s_streamMethods = ["aes-256-cfb", "aes-256-ctr", "chacha20-ietf"];

    private CipherInfo _cipher = null!;
    private byte[] _key = [];
    private byte[] _plaintext = [];
    private byte[] _ciphertext = [];
    private byte[] _output = [];

    [ParamsSource(nameof(Methods))]
    public string Method { get; set; } = "aes-256-gcm";

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
        _ciphertext = new byte[encryptor.MaxOutputSize(StreamSize)];
        var length = 0;
        for (var offset = 0; offset < StreamSize; offset += PieceSize)
        {
            length += encryptor.Encrypt(_plaintext.AsSpan(offset, PieceSize), _ciphertext.AsSpan(length));
        }

        _ciphertext = _ciphertext[..length];
        _output = new byte[PieceSize * 2];
    }

    [Benchmark]
    public int Encode()
    {
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(_cipher, _key);
        var total = 0;
        for (var offset = 0; offset < StreamSize; offset += PieceSize)
        {
            total += encryptor.Encrypt(_plaintext.AsSpan(offset, PieceSize), _output);
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
            var n = Math.Min(PieceSize, ciphertext.Length);
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
