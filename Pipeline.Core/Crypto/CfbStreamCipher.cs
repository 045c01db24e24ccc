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
        for (var i = 0; i < input.Length; i++)
        {
            if (_position == size)
            {
                _engine.ProcessBlock(_register, _keystream);
                _position = 0;
            }

            var inByte = input[i];
            var outByte = (byte)(inByte ^ _keystream[_position]);
            _register[_position++] = _encrypt ? outByte : inByte;
            output[i] = outByte;
        }
    }

    public void Dispose()
    {
    }
}
