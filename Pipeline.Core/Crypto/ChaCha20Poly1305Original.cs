using System.Buffers.Binary;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// libsodium's original ChaCha20-Poly1305 (<c>crypto_aead_chacha20poly1305</c>, the <c>chacha20-poly1305</c> method
/// of Python shadowsocks): ChaCha20 with an 8-byte nonce and 64-bit block counter; the Poly1305 key is the first 32
/// bytes of block 0, the payload is encrypted from block 1, and the tag covers
/// <c>ad || u64le(|ad|) || ciphertext || u64le(|ciphertext|)</c> with no padding (Shadowsocks uses no ad).
/// </summary>
internal sealed class ChaCha20Poly1305Original(ReadOnlySpan<byte> key) : IAeadCipher
{
    private readonly byte[] _key = key.Length == 32 ? key.ToArray() : throw new ArgumentException("needs a 32-byte key", nameof(key));
    private readonly ChaChaEngine _chacha = new(20);
    private readonly Poly1305 _poly = new();

    public int NonceSize => 8;

    public int TagSize => 16;

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        Start(nonce);
        _chacha.ProcessBytes(plaintext, ciphertext);
        ComputeTag(ciphertext[..plaintext.Length], tag);
    }

    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        Start(nonce);
        Span<byte> expected = stackalloc byte[16];
        ComputeTag(ciphertext, expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, tag))
        {
            return false;
        }

        _chacha.ProcessBytes(ciphertext, plaintext);
        return true;
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);

    /// <summary>Keys ChaCha20 for this nonce, takes block 0 as the Poly1305 key, and leaves the keystream at block 1.</summary>
    private void Start(ReadOnlySpan<byte> nonce)
    {
        _chacha.Init(true, new ParametersWithIV(new KeyParameter(_key), nonce.ToArray()));
        Span<byte> block0 = stackalloc byte[64];
        block0.Clear();
        _chacha.ProcessBytes(block0, block0);
        _poly.Init(new KeyParameter(block0[..32].ToArray()));
        CryptographicOperations.ZeroMemory(block0);
    }

    private void ComputeTag(ReadOnlySpan<byte> ciphertext, Span<byte> tag)
    {
        Span<byte> length = stackalloc byte[8];
        _poly.BlockUpdate(length); // |ad| = 0
        _poly.BlockUpdate(ciphertext);
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)ciphertext.Length);
        _poly.BlockUpdate(length);
        _poly.DoFinal(tag);
    }
}
