using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>The test-side SIP022 UDP reference checked on its own: known answers for its primitives, and its layout.</summary>
public sealed class Sip022UdpReferenceTests
{
    public static TheoryData<string> Methods() => new(Sip022UdpReference.Methods);

    [Fact]
    public void HChaCha20_MatchesTheXChaChaDraftVector()
    {
        // draft-irtf-cfrg-xchacha-03 § 2.2.1.
        var key = Enumerable.Range(0, 32).Select(static i => (byte)i).ToArray();
        var nonce = Convert.FromHexString("000000090000004a0000000031415927");

        Assert.Equal(
            Convert.FromHexString("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"),
            Sip022UdpReference.HChaCha20(key, nonce));
    }

    [Fact]
    public void XChaCha20Poly1305_MatchesTheXChaChaDraftAeadVector()
    {
        // draft-irtf-cfrg-xchacha-03 § A.3.1.
        var key = Convert.FromHexString("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        var nonce = Convert.FromHexString("404142434445464748494a4b4c4d4e4f5051525354555657");
        var aad = Convert.FromHexString("50515253c0c1c2c3c4c5c6c7");
        var plaintext = Encoding.ASCII.GetBytes("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
        var expected = Convert.FromHexString(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb" +
            "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452" +
            "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9" +
            "21f9664c97637da9768812f615c68b13b52e" +
            "c0875924c1c7987947deafd8780acf49");

        var sealedText = Sip022UdpReference.XChaCha20Poly1305Seal(key, nonce, aad, plaintext);

        Assert.Equal(expected, sealedText);
        Assert.Equal(plaintext, Sip022UdpReference.XChaCha20Poly1305Open(key, nonce, aad, sealedText));
        sealedText[^1] ^= 1;
        Assert.Null(Sip022UdpReference.XChaCha20Poly1305Open(key, nonce, aad, sealedText));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void SealClient_OpensWithEveryFieldAsSent_AndTamperingOrAnotherPskFails(string method)
    {
        var psk = RandomNumberGenerator.GetBytes(Sip022UdpReference.KeySize(method));
        var reference = new Sip022UdpReference(method, psk);
        var address = Sip022UdpReference.Address(new IPEndPoint(IPAddress.Parse("10.1.2.3"), 5353));
        var payload = RandomNumberGenerator.GetBytes(100);

        var packet = reference.SealClient(0x0102030405060708, 7, address, payload, timestamp: 1_700_000_000, paddingLength: 5);

        var overhead = method.Contains("chacha", StringComparison.Ordinal) ? 24 + 16 + 16 : 16 + 16;
        Assert.Equal(overhead + 1 + 8 + 2 + 5 + address.Length + payload.Length, packet.Length);
        var opened = reference.OpenClient(packet);
        Assert.NotNull(opened);
        Assert.Equal((0x0102030405060708UL, 7UL, (byte)0, 1_700_000_000UL, (ulong?)null, 5), (opened.SessionId, opened.PacketId, opened.Type, opened.Timestamp, opened.ClientSessionId, opened.PaddingLength));
        Assert.Equal(address, opened.Address);
        Assert.Equal(payload, opened.Payload);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.1.2.3"), 5353), opened.EndPoint);

        packet[packet.Length / 2] ^= 0x40;
        Assert.Null(reference.OpenClient(packet));
        packet[packet.Length / 2] ^= 0x40;
        Assert.Null(new Sip022UdpReference(method, RandomNumberGenerator.GetBytes(psk.Length)).OpenClient(packet));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void SealServer_CarriesTheClientSessionId(string method)
    {
        var reference = new Sip022UdpReference(method, RandomNumberGenerator.GetBytes(Sip022UdpReference.KeySize(method)));
        var address = Sip022UdpReference.Address(new IPEndPoint(IPAddress.IPv6Loopback, 53));

        var opened = reference.OpenServer(reference.SealServer(11, 0, 22, address, "reply"u8));

        Assert.NotNull(opened);
        Assert.Equal((11UL, 0UL, (byte)1, (ulong?)22), (opened.SessionId, opened.PacketId, opened.Type, opened.ClientSessionId));
        Assert.InRange(opened.Age, -1, 1);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 53), opened.EndPoint);
        Assert.Equal("reply"u8.ToArray(), opened.Payload);
    }

    [Theory]
    [InlineData("2022-blake3-aes-128-gcm")]
    [InlineData("2022-blake3-aes-256-gcm")]
    public void AesMethods_SeparateHeaderIsOneEcbBlock_AndNonceIsItsLastTwelveBytes(string method)
    {
        // § 3.2.1, recomputed here step by step from the sealed packet.
        var psk = RandomNumberGenerator.GetBytes(Sip022UdpReference.KeySize(method));
        var reference = new Sip022UdpReference(method, psk);
        var address = Sip022UdpReference.Address(new IPEndPoint(IPAddress.Loopback, 9));
        var packet = reference.SealClient(0xAABBCCDDEEFF0011, 0x42, address, "x"u8, timestamp: 5);

        using var block = Aes.Create();
        block.Key = psk;
        var header = block.DecryptEcb(packet.AsSpan(0, 16), PaddingMode.None);
        Assert.Equal(0xAABBCCDDEEFF0011UL, BinaryPrimitives.ReadUInt64BigEndian(header));
        Assert.Equal(0x42UL, BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)));

        using var gcm = new AesGcm(reference.SessionSubkey(header.AsSpan(0, 8)), 16);
        var body = new byte[packet.Length - 32];
        gcm.Decrypt(header.AsSpan(4, 12), packet.AsSpan(16, body.Length), packet.AsSpan(16 + body.Length), body);
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, .. address, (byte)'x'], body);
    }
}
