using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// Counter mode over a 16-byte block cipher: the IV is the first counter block, incremented as one 128-bit
/// big-endian integer per block (OpenSSL's and mbed TLS's CTR). Keystream is made 256 blocks (4 KiB) at a time; AES goes
/// through one reused .NET AES-ECB transform per batch (several times faster than a block-at-a-time engine).
/// </summary>
internal sealed class CtrStreamCipher : IStreamCipher
{
    private const int BlockSize = 16;
    private const int BatchBlocks = 256;

    private readonly Aes? _aes;
    private readonly ICryptoTransform? _ecb;
    private readonly IBlockCipher? _engine;
    private readonly byte[] _counters = new byte[BlockSize * BatchBlocks];
    private readonly byte[] _keystream = new byte[BlockSize * BatchBlocks];
    private UInt128 _counter;
    private int _position = BlockSize * BatchBlocks;

    /// <summary>AES-CTR on .NET's AES-ECB.</summary>
    public CtrStreamCipher(ReadOnlySpan<byte> aesKey, ReadOnlySpan<byte> iv)
        : this(iv)
    {
        _aes = Aes.Create();
        _aes.Key = aesKey.ToArray();
        _aes.Mode = CipherMode.ECB;
        _aes.Padding = PaddingMode.None;
        _ecb = _aes.CreateEncryptor();
    }

    /// <summary>CTR on a 16-byte BouncyCastle block cipher initialised for encryption (Camellia).</summary>
    public CtrStreamCipher(IBlockCipher engine, ReadOnlySpan<byte> iv)
        : this(iv)
    {
        if (engine.GetBlockSize() != BlockSize)
        {
            throw new ArgumentException("CTR here needs a 16-byte block cipher.", nameof(engine));
        }

        _engine = engine;
    }

    private CtrStreamCipher(ReadOnlySpan<byte> iv)
    {
        if (iv.Length != BlockSize)
        {
            throw new ArgumentException($"CTR needs a {BlockSize}-byte IV, not {iv.Length}.", nameof(iv));
        }

        _counter = BinaryPrimitives.ReadUInt128BigEndian(iv);
    }

    public void Process(ReadOnlySpan<byte> input, Span<byte> output)
    {
        while (!input.IsEmpty)
        {
            if (_position == _keystream.Length)
            {
                Refill();
            }

            var n = Math.Min(input.Length, _keystream.Length - _position);
            Xor(input[..n], _keystream.AsSpan(_position, n), output[..n]);
            _position += n;
            input = input[n..];
            output = output[n..];
        }
    }

    public void Dispose()
    {
        _ecb?.Dispose();
        _aes?.Dispose();
    }

    private static void Xor(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> destination)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= a.Length - Vector<byte>.Count; i += Vector<byte>.Count)
            {
                (new Vector<byte>(a[i..]) ^ new Vector<byte>(b[i..])).CopyTo(destination[i..]);
            }
        }

        for (; i < a.Length; i++)
        {
            destination[i] = (byte)(a[i] ^ b[i]);
        }
    }

    private void Refill()
    {
        for (var block = 0; block < BatchBlocks; block++)
        {
            BinaryPrimitives.WriteUInt128BigEndian(_counters.AsSpan(block * BlockSize, BlockSize), _counter);
            _counter++;
        }

        if (_ecb is not null)
        {
            _ecb.TransformBlock(_counters, 0, _counters.Length, _keystream, 0);
        }
        else
        {
            for (var offset = 0; offset < _counters.Length; offset += BlockSize)
            {
                _engine!.ProcessBlock(_counters.AsSpan(offset, BlockSize), _keystream.AsSpan(offset, BlockSize));
            }
        }

        _position = 0;
    }
}
