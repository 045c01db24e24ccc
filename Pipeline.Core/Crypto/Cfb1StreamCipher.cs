using Org.BouncyCastle.Crypto;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// 1-bit cipher feedback (OpenSSL's <c>-cfb1</c>): one block encryption per bit, most significant bit first; the
/// register shifts left one bit and takes the ciphertext bit. Eight block operations per byte: legacy only.
/// </summary>
internal sealed class Cfb1StreamCipher : IStreamCipher
{
    private readonly IBlockCipher _engine;
    private readonly bool _encrypt;
    private readonly byte[] _register;
    private readonly byte[] _keystream;

    public Cfb1StreamCipher(IBlockCipher engine, ReadOnlySpan<byte> iv, bool encrypt)
    {
        var size = engine.GetBlockSize();
        if (iv.Length != size)
        {
            throw new ArgumentException($"CFB1 needs a {size}-byte IV, not {iv.Length}.", nameof(iv));
        }

        _engine = engine;
        _encrypt = encrypt;
        _register = iv.ToArray();
        _keystream = new byte[size];
    }

    public void Process(ReadOnlySpan<byte> input, Span<byte> output)
    {
        for (var i = 0; i < input.Length; i++)
        {
            var inByte = input[i];
            var outByte = 0;
            for (var bit = 7; bit >= 0; bit--)
            {
                _engine.ProcessBlock(_register, _keystream);
                var inBit = (inByte >> bit) & 1;
                var outBit = inBit ^ (_keystream[0] >> 7);
                outByte |= outBit << bit;
                ShiftLeftOneBit(_encrypt ? outBit : inBit);
            }

            output[i] = (byte)outByte;
        }
    }

    public void Dispose()
    {
    }

    private void ShiftLeftOneBit(int lowBit)
    {
        for (var j = 0; j < _register.Length - 1; j++)
        {
            _register[j] = (byte)((_register[j] << 1) | (_register[j + 1] >> 7));
        }

        _register[^1] = (byte)((_register[^1] << 1) | lowBit);
    }
}
