using Org.BouncyCastle.Crypto;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// 8-bit cipher feedback (OpenSSL's <c>-cfb8</c>): one block encryption per byte; the register shifts left one byte
/// and takes the ciphertext byte.
/// </summary>
internal sealed class Cfb8StreamCipher : IStreamCipher
{
    private readonly IBlockCipher _engine;
    private readonly bool _encrypt;
    private readonly byte[] _register;
    private readonly byte[] _keystream;

    public Cfb8StreamCipher(IBlockCipher engine, ReadOnlySpan<byte> iv, bool encrypt)
    {
        var size = engine.GetBlockSize();
        if (iv.Length != size)
        {
            throw new ArgumentException($"CFB8 needs a {size}-byte IV, not {iv.Length}.", nameof(iv));
        }

        _engine = engine;
        _encrypt = encrypt;
        _register = iv.ToArray();
        _keystream = new byte[size];
    }

    public void Process(ReadOnlySpan<byte> input, Span<byte> output)
    {
        var last = _register.Length - 1;
        for (var i = 0; i < input.Length; i++)
        {
            _engine.ProcessBlock(_register, _keystream);
            var inByte = input[i];
            var outByte = (byte)(inByte ^ _keystream[0]);
            _register.AsSpan(1).CopyTo(_register);
            _register[last] = _encrypt ? outByte : inByte;
            output[i] = outByte;
        }
    }

    public void Dispose()
    {
    }
}
