using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// The legacy <c>table</c> method: a byte substitution derived from the password (no IV, no keystream).
/// Table: a = the first 8 bytes of MD5(password) as a little-endian unsigned integer; start from 0..255 and, for
/// i = 1..1023, stably sort by <c>a mod (x + i)</c>. Decryption uses the inverse table.
/// </summary>
internal sealed class TableStreamCipher(byte[] table) : IStreamCipher
{
    private const int CacheLimit = 64;
    private static readonly ConcurrentDictionary<string, (byte[] Encrypt, byte[] Decrypt)> s_tables = new();

    public static TableStreamCipher Create(ReadOnlySpan<byte> password, bool encrypt)
    {
        var id = Convert.ToBase64String(password);
        if (!s_tables.TryGetValue(id, out var tables))
        {
            tables = Build(password);
            if (s_tables.Count < CacheLimit)
            {
                s_tables.TryAdd(id, tables);
            }
        }

        return new TableStreamCipher(encrypt ? tables.Encrypt : tables.Decrypt);
    }

    public void Process(ReadOnlySpan<byte> input, Span<byte> output)
    {
        for (var i = 0; i < input.Length; i++)
        {
            output[i] = table[input[i]];
        }
    }

    public void Dispose()
    {
    }

    private static (byte[] Encrypt, byte[] Decrypt) Build(ReadOnlySpan<byte> password)
    {
        Span<byte> digest = stackalloc byte[MD5.HashSizeInBytes];
        MD5.HashData(password, digest);
        var a = BinaryPrimitives.ReadUInt64LittleEndian(digest);
        var order = Enumerable.Range(0, 256).ToArray();
        for (var i = 1; i < 1024; i++)
        {
            var round = (ulong)i;
            order = [.. order.OrderBy(x => a % ((ulong)x + round))]; // OrderBy is stable, as Python's sort
        }

        var encrypt = new byte[256];
        var decrypt = new byte[256];
        for (var x = 0; x < 256; x++)
        {
            encrypt[x] = (byte)order[x];
            decrypt[order[x]] = (byte)x;
        }

        return (encrypt, decrypt);
    }
}
