using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// A toy keystream (no security) that exercises the stream-cipher framing before the real stream methods land in
/// the catalog: one with a 16-byte IV, one without (like table and none).
/// </summary>
internal sealed class TestStreamCipher(byte[] key, byte[] iv) : IStreamCipher
{
    public static readonly CipherInfo WithIv = new("test-stream-iv16", CipherFamily.Stream, 16, 16, null, Create);

    public static readonly CipherInfo WithoutIv = new("test-stream-noiv", CipherFamily.Stream, 16, 0, null, Create);

    private long _position;

    public static CipherInfo Find(string name) =>
        name == WithIv.Name ? WithIv : name == WithoutIv.Name ? WithoutIv : throw new ArgumentException($"unknown method {name}");

    public void Process(ReadOnlySpan<byte> input, Span<byte> output)
    {
        for (var i = 0; i < input.Length; i++, _position++)
        {
            var k = key[(int)(_position % key.Length)] ^ (byte)((_position * 131) + (_position >> 8));
            if (iv.Length > 0)
            {
                k ^= iv[(int)(_position % iv.Length)];
            }

            output[i] = (byte)(input[i] ^ k);
        }
    }

    public void Dispose()
    {
    }

    private static IStreamCipher Create(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> iv, bool encrypt) =>
        new TestStreamCipher(key.ToArray(), iv.ToArray());
}
