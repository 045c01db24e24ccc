using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

public sealed class UdpPacketCodecTests
{
    public static TheoryData<string> AllMethods() => CipherMethods.All();

    public static TheoryData<string> AeadMethods() => CipherMethods.Aead();

    public static TheoryData<string> EncryptingMethods() => CipherMethods.Encrypting();

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void RoundTrip_Payloads_RestoresThem(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        foreach (var length in new[] { 0, 1, 7, 1500, 65_000 })
        {
            var payload = RandomNumberGenerator.GetBytes(length);
            var packet = new byte[UdpPacketCodec.MaxPacketSize(cipher, length)];

            var packetLength = UdpPacketCodec.Encrypt(cipher, key, payload, packet);
            var decrypted = new byte[packetLength];

            Assert.Equal(cipher.SaltSize + length + cipher.TagSize, packetLength);
            Assert.True(UdpPacketCodec.TryDecrypt(cipher, key, packet.AsSpan(0, packetLength), decrypted, out var payloadLength));
            Assert.Equal(payload, decrypted[..payloadLength]);
        }
    }

    [Theory]
    [MemberData(nameof(EncryptingMethods))]
    public void RoundTrip_InPlace_RestoresPayload(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var payload = RandomNumberGenerator.GetBytes(300);
        var packet = new byte[UdpPacketCodec.MaxPacketSize(cipher, payload.Length)];
        payload.CopyTo(packet, cipher.SaltSize);

        var length = UdpPacketCodec.Encrypt(cipher, key, packet.AsSpan(cipher.SaltSize, payload.Length), packet);
        if (payload.Length > 0)
        {
            Assert.NotEqual(payload, packet.AsSpan(cipher.SaltSize, payload.Length).ToArray());
        }

        Assert.True(UdpPacketCodec.TryDecrypt(cipher, key, packet.AsSpan(0, length), packet.AsSpan(cipher.SaltSize), out var payloadLength));
        Assert.Equal(payload, packet.AsSpan(cipher.SaltSize, payloadLength).ToArray());
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void Encrypt_SamePayload_UsesFreshSalt(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var payload = new byte[32];
        var a = new byte[UdpPacketCodec.MaxPacketSize(cipher, payload.Length)];
        var b = new byte[a.Length];

        UdpPacketCodec.Encrypt(cipher, key, payload, a);
        UdpPacketCodec.Encrypt(cipher, key, payload, b);

        if (cipher.SaltSize > 0)
        {
            Assert.NotEqual(a, b);
        }
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void Encrypt_Aead_MatchesIndependentSealWithZeroNonce(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var payload = RandomNumberGenerator.GetBytes(100);
        var packet = new byte[UdpPacketCodec.MaxPacketSize(cipher, payload.Length)];
        UdpPacketCodec.Encrypt(cipher, key, payload, packet);

        var subkey = new byte[cipher.KeySize];
        KeyDerivation.SessionSubkey(key, packet.AsSpan(0, cipher.SaltSize), subkey);
        using var aead = cipher.CreateAead(subkey);
        var plaintext = new byte[payload.Length];
        var body = packet.AsSpan(cipher.SaltSize, payload.Length);

        Assert.True(aead.TryDecrypt(new byte[aead.NonceSize], body, packet.AsSpan(cipher.SaltSize + payload.Length), plaintext));
        Assert.Equal(payload, plaintext);
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void TryDecrypt_FlippedBit_IsFalse(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var payload = RandomNumberGenerator.GetBytes(200);
        var packet = new byte[UdpPacketCodec.MaxPacketSize(cipher, payload.Length)];
        UdpPacketCodec.Encrypt(cipher, key, payload, packet);
        var output = new byte[packet.Length];

        for (var position = 0; position < packet.Length; position += 7)
        {
            foreach (var bit in new[] { 0, 7 })
            {
                var tampered = (byte[])packet.Clone();
                tampered[position] ^= (byte)(1 << bit);

                Assert.False(UdpPacketCodec.TryDecrypt(cipher, key, tampered, output, out var length));
                Assert.Equal(0, length);
                Assert.All(output, b => Assert.Equal(0, b));
            }
        }
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void TryDecrypt_Truncated_IsFalse(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var payload = RandomNumberGenerator.GetBytes(50);
        var packet = new byte[UdpPacketCodec.MaxPacketSize(cipher, payload.Length)];
        UdpPacketCodec.Encrypt(cipher, key, payload, packet);
        var output = new byte[packet.Length];

        for (var length = 0; length < packet.Length; length++)
        {
            Assert.False(UdpPacketCodec.TryDecrypt(cipher, key, packet.AsSpan(0, length), output, out var payloadLength));
            Assert.Equal(0, payloadLength);
        }
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void TryDecrypt_ShorterThanSalt_IsFalse(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var output = new byte[64];

        for (var length = 0; length < cipher.SaltSize + cipher.TagSize; length++)
        {
            Assert.False(UdpPacketCodec.TryDecrypt(cipher, key, new byte[length], output, out _));
        }
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void TryDecrypt_PayloadBufferTooSmall_IsFalse(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var packet = new byte[UdpPacketCodec.MaxPacketSize(cipher, 10)];
        UdpPacketCodec.Encrypt(cipher, key, new byte[10], packet);

        Assert.False(UdpPacketCodec.TryDecrypt(cipher, key, packet, new byte[9], out _));
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void TryDecrypt_RandomPackets_IsFalseWithoutThrowing(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var random = new Random(23);
        var output = new byte[600];
        for (var i = 0; i < 200; i++)
        {
            var packet = new byte[random.Next(0, 600)];
            random.NextBytes(packet);

            Assert.False(UdpPacketCodec.TryDecrypt(cipher, key, packet, output, out _));
        }
    }
}
