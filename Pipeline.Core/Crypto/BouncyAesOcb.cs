using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Modes;
using Org.BouncyCastle.Crypto.Parameters;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// AES-OCB3 (RFC 7253; the <c>aes-*-ocb</c> methods of Python shadowsocks): 12-byte nonce, 16-byte tag, on BouncyCastle.
/// Each call works in a buffer from <paramref name="pool"/> (<see cref="ChunkPool.Shared"/> unless given; a chunk's
/// takes 32 KiB, a datagram's up to 128), which the idle trim can give back.
/// </summary>
internal sealed class BouncyAesOcb(ReadOnlySpan<byte> key, ChunkPool? pool = null) : IAeadCipher
{
    private readonly ChunkPool _pool = pool ?? ChunkPool.Shared;

    private readonly KeyParameter _key = new(key);
    private readonly OcbBlockCipher _ocb = new(AesUtilities.CreateEngine(), AesUtilities.CreateEngine());

    public int NonceSize => 12;

    public int TagSize => 16;

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        _ocb.Init(true, new AeadParameters(_key, 128, nonce.ToArray()));
        var output = _pool.Rent(plaintext.Length + 16);
        try
        {
            var n = _ocb.ProcessBytes(plaintext, output);
            n += _ocb.DoFinal(output.AsSpan(n));
            output.AsSpan(0, plaintext.Length).CopyTo(ciphertext);
            output.AsSpan(plaintext.Length, 16).CopyTo(tag);
        }
        finally
        {
            _pool.Return(output);
        }
    }

    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        _ocb.Init(false, new AeadParameters(_key, 128, nonce.ToArray()));
        var output = _pool.Rent(ciphertext.Length + 16);
        try
        {
            var n = _ocb.ProcessBytes(ciphertext, output);
            n += _ocb.ProcessBytes(tag, output.AsSpan(n));
            _ocb.DoFinal(output.AsSpan(n));
            output.AsSpan(0, ciphertext.Length).CopyTo(plaintext);
            return true;
        }
        catch (InvalidCipherTextException)
        {
            return false;
        }
        finally
        {
            output.AsSpan(0, ciphertext.Length + 16).Clear(); // plaintext, or what a forger's text decrypts to
            _pool.Return(output);
        }
    }

    public void Dispose()
    {
    }
}
