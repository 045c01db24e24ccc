using System.Net;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using static Shadowsocks.Pipeline.Tests.Core.Protocol.StreamCodecKit;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// An AEAD decryptor carries a unit cut by the end of a read in a buffer of the relay's <see cref="ChunkPool"/>
/// (which the idle trim empties; the shared array pool keeps its arrays until full collections a quiet process never
/// runs), and gives it back exactly once: when the unit is whole, or when the stream fails.
/// </summary>
public sealed class DecryptorCarryOverTests
{
    /// <summary>A payload of 20,000 bytes is one unit of 16,383 (SIP004) or 20,000 (SIP022) plus its tag: a 32 KiB bucket.</summary>
    private const int Bucket = 32 * 1024;

    private const int DataSize = 20_000;

    /// <summary>The cut: inside the first payload unit after its length unit (2 + 16 bytes).</summary>
    private const int Cut = 18 + 1000;

    public static TheoryData<string> Methods() => ["aes-256-gcm", "chacha20-ietf-poly1305", "2022-blake3-aes-256-gcm"];

    [Theory]
    [MemberData(nameof(Methods))]
    public void AUnitCutByARead_IsCarriedInAPoolBuffer_ReturnedOnceWhenWhole(string method)
    {
        var pool = new ChunkPool();
        var (encryptor, decryptor) = Pair(method, pool);
        using var disposeEncryptor = encryptor;
        using var disposeDecryptor = decryptor;
        var output = new byte[256 * 1024];
        var random = new Random(7);

        // The header and first bytes, whole in one read: nothing carried over.
        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(Encrypt(encryptor, [.. Header(ShadowsocksAddress.FromIp(IPAddress.Loopback, 80)), 1, 2, 3]), output, out _));
        Assert.Equal(0, pool.RentedBytes);

        for (var round = 1; round <= 3; round++)
        {
            var data = RandomBytes(random, DataSize);
            var wire = Encrypt(encryptor, data);

            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(wire.AsSpan(0, Cut), output, out var first));
            Assert.Equal(round * Bucket, pool.RentedBytes); // the carry-over is the pool's (the same buffer each round)
            Assert.Equal(0, pool.PooledBytes);

            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(wire.AsSpan(Cut), output.AsSpan(first), out var rest));
            Assert.Equal(data, output.AsSpan(0, first + rest).ToArray());
            Assert.Equal(Bucket, pool.PooledBytes); // given back once, not twice
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AStreamThatFails_GivesItsCarryOverBack(string method)
    {
        var pool = new ChunkPool();
        var (encryptor, decryptor) = Pair(method, pool);
        using var disposeEncryptor = encryptor;
        using var disposeDecryptor = decryptor;
        var output = new byte[256 * 1024];
        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(Encrypt(encryptor, [.. Header(ShadowsocksAddress.FromIp(IPAddress.Loopback, 80)), 1, 2, 3]), output, out _));
        var wire = Encrypt(encryptor, RandomBytes(new Random(3), DataSize));
        wire[Cut + 10] ^= 1; // a forged byte in the carried unit

        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(wire.AsSpan(0, Cut), output, out _));
        Assert.Equal(0, pool.PooledBytes);
        Assert.Equal(DecryptStatus.AuthenticationFailed, decryptor.Decrypt(wire.AsSpan(Cut), output, out _));
        Assert.Equal(Bucket, pool.PooledBytes);

        // The dead stream returns its failure without renting or returning again.
        Assert.Equal(DecryptStatus.AuthenticationFailed, decryptor.Decrypt(wire.AsSpan(0, Cut), output, out _));
        Assert.Equal(Bucket, pool.RentedBytes);
        Assert.Equal(Bucket, pool.PooledBytes);
    }

    private static (IStreamEncryptor Encryptor, IStreamDecryptor Decryptor) Pair(string method, ChunkPool pool)
    {
        Assert.True(CipherCatalog.TryGet(method, out var cipher));
        if (cipher.Is2022)
        {
            var psk = RandomNumberGenerator.GetBytes(cipher.KeySize);
            return (ShadowsocksStreamCodec.CreateEncryptor(cipher, psk), new Aead2022StreamDecryptor(cipher, psk, null, TimeProvider.System, pool: pool));
        }

        var key = CipherMethods.MasterKey(cipher);
        return (ShadowsocksStreamCodec.CreateEncryptor(cipher, key), new AeadStreamDecryptor(cipher, key, pool));
    }
}
