using Org.BouncyCastle.Crypto;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// Full-block cipher feedback (CFB-64 or CFB-128, the block size of <paramref name="engine"/>) as a byte stream:
/// the keystream block is E(feedback register), and the register fills with ciphertext as it is produced, so input
/// may stop and resume at any byte. BouncyCastle's and .NET's CFB work on whole blocks only.
/// </summary>
internal sealed class CfbStreamCipher : IStreamCipher
{
    private readonly IBlockCipher _engine;
    private readonly bool _encrypt;
    private readonly byte[] _register;
    private readonly byte[] _keystream;
    private int _position;

    /// <param name="engine">A block cipher initialised for encryption (CFB only ever encrypts the register).</param>
    public CfbStreamCipher(IBlockCipher engine, ReadOnlySpan<byte> iv, bool encrypt)
    {
        var size = engine.GetBlockSize();
        if (iv.Length != size)
        {
            throw new ArgumentException($"CFB needs a {size}-byte IV, not {iv.Length}.", nameof(iv));
        }

        _engine = engine;
        _encrypt = encrypt;
        _register = iv.ToArray();
        _keystream = new byte[size];
        _position = size;
    }

    public void Process(ReadOnlySpan<byte> input, Span<byte> output)
    {
        var size = _register.Length;
        var i = 0;
        while (i < input.Length)
        {
            if (_position == size)
            {
                _engine.ProcessBlock(_register, _keystream);
                _position = 0;

                // Whole blocks at once: ciphertext = plaintext xor E(register); the ciphertext is the next register.
                while (input.Length - i >= size)
                {
                    var inBlock = input.Slice(i, size);
                    if (_encrypt)
                    {
                        Xor(inBlock, _keystream, output.Slice(i, size));
                        output.Slice(i, size).CopyTo(_register);
                    }
                    else
                    {
                        inBlock.CopyTo(_register);
                        Xor(_register, _keystream, output.Slice(i, size));
                    }

                    i += size;
                    _engine.ProcessBlock(_register, _keystream);
                }

                if (i == input.Length)
                {
                    return;
                }
            }

            var inByte = input[i];
            var outByte = (byte)(inByte ^ _keystream[_position]);
            _register[_position++] = _encrypt ? outByte : inByte;
            output[i++] = outByte;
        }
    }

    public void Dispose()
    {
    }

    private static void Xor(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> destination)
    {
        for (var j = 0; j < a.Length; j++)
        {
            destination[j] = (byte)(a[j] ^ b[j]);
        }
    }
}
