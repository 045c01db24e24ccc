using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

/// <summary>
/// AES-OCB works in a buffer of the relay's <see cref="ChunkPool"/> (which the idle trim empties), given back once per
/// call, with no plaintext left in it.
/// </summary>
public sealed class BouncyAesOcbTests
{
    private const int Payload = 0x3FFF; // a full AEAD chunk: its buffer is a 32 KiB bucket

    [Fact]
    public void EachCall_RentsFromThePool_AndGivesTheBufferBackOnce_Cleared()
    {
        var pool = new ChunkPool();
        using var ocb = new BouncyAesOcb(RandomNumberGenerator.GetBytes(32), pool);
        var nonce = new byte[ocb.NonceSize];
        var plaintext = new byte[Payload];
        plaintext.AsSpan().Fill(0xA5);
        var ciphertext = new byte[Payload];
        var tag = new byte[ocb.TagSize];

        ocb.Encrypt(nonce, plaintext, ciphertext, tag);
        Assert.Equal(32 * 1024, pool.RentedBytes);
        Assert.Equal(32 * 1024, pool.PooledBytes);

        var opened = new byte[Payload];
        Assert.True(ocb.TryDecrypt(nonce, ciphertext, tag, opened));
        Assert.Equal(plaintext, opened);
        Assert.Equal(2 * 32 * 1024, pool.RentedBytes); // the same buffer again
        Assert.Equal(32 * 1024, pool.PooledBytes);

        var buffer = pool.Rent(Payload + 16);
        Assert.DoesNotContain((byte)0xA5, buffer.AsSpan(0, Payload + 16).ToArray()); // the decrypted text was wiped
    }
}
