using Org.BouncyCastle.Crypto;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>Output feedback: the keystream is E(IV), E(E(IV)), ...; the same operation encrypts and decrypts.</summary>
internal sealed class OfbStreamCipher : IStreamCipher
{
    private readonly IBlockCipher _engine;
    private readonly byte[] _register;
    private int _position;

    public OfbStreamCipher(IBlockCipher engine, ReadOnlySpan<byte> iv)
    {
        var size = engine.GetBlockSize();
        if (iv.Length != size)
        {
            throw new ArgumentException($"OFB needs a {size}-byte IV, not {iv.Length}.", nameof(iv));
        }

        _engine = engine;
        _register = iv.ToArray();
        _position = size;
    }

    public void Process(ReadOnlySpan<byte> input, Span<byte> output)
    {
        for (var i = 0; i < input.Length; i++)
        {
            if (_position == _register.Length)
            {
                _engine.ProcessBlock(_register, _register);
                _position = 0;
            }

            output[i] = (byte)(input[i] ^ _register[_position++]);
        }
    }

    public void Dispose()
    {
    }
}
