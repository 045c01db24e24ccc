using System.Text;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

/// <summary>Known answers from independent published test vectors, run through the catalog's own objects.</summary>
public sealed class PublishedVectorTests
{
    // NIST SP 800-38A, Appendix F: AES-128 key, IV and the four-block plaintext shared by the mode examples.
    private const string NistKey128 = "2b7e151628aed2a6abf7158809cf4f3c";
    private const string NistIv = "000102030405060708090a0b0c0d0e0f";
    private const string NistCounter = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

    private const string NistPlaintext =
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

    [Theory]
    [InlineData("aes-128-cfb", NistKey128, NistIv, NistPlaintext, // F.3.13 CFB128-AES128.Encrypt
        "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b26751f67a3cbb140b1808cf187a4f4dfc04b05357c5d1c0eeac4c66f9ff7f2e6")]
    [InlineData("aes-128-ofb", NistKey128, NistIv, NistPlaintext, // F.4.1 OFB-AES128.Encrypt
        "3b3fd92eb72dad20333449f8e83cfb4a7789508d16918f03f53c52dac54ed8259740051e9c5fecf64344f7a82260edcc304c6528f659c77866a510d9c1d6ae5e")]
    [InlineData("aes-128-ctr", NistKey128, NistCounter, NistPlaintext, // F.5.1 CTR-AES128.Encrypt
        "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee")]
    [InlineData("aes-256-ctr", "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", NistCounter, NistPlaintext, // F.5.5 CTR-AES256.Encrypt
        "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6")]
    [InlineData("aes-128-cfb8", NistKey128, NistIv, "6bc1bee22e409f96e93d7e117393172aae2d", // F.3.7 CFB8-AES128.Encrypt
        "3b79424c9c0dd436bace9e0ed4586a4f32b9")]
    [InlineData("aes-128-cfb1", NistKey128, NistIv, "6bc1", // F.3.1 CFB1-AES128.Encrypt: 16 plaintext bits 0110101111000001
        "68b3")]
    [InlineData("idea-cfb", "00010002000300040005000600070008", "0000000100020003", "0000000000000000", // IDEA (Lai 1992) block
        "11fbed2b01986de5")] // vector: the first CFB block is P xor E(IV), so a zero P shows E(IV) itself
    public void StreamModesMatchPublishedVectors(string method, string key, string iv, string plaintext, string ciphertext)
    {
        var cipher = Method(method);
        var input = Convert.FromHexString(plaintext);
        using var encryptor = cipher.CreateStream(Convert.FromHexString(key), Convert.FromHexString(iv), encrypt: true);
        var output = new byte[input.Length];
        encryptor.Process(input, output);
        Assert.Equal(ciphertext, Convert.ToHexStringLower(output));

        using var decryptor = cipher.CreateStream(Convert.FromHexString(key), Convert.FromHexString(iv), encrypt: false);
        decryptor.Process(output, output);
        Assert.Equal(plaintext, Convert.ToHexStringLower(output));
    }

    [Theory]
    [InlineData("0102030405", 0, "b2396305f03dc027ccc3524a0a1118a8")] // RFC 6229 § 2, 40-bit key, offset 0
    [InlineData("0102030405", 16, "6982944f18fc82d589c403a47a0d0919")] // offset 16
    [InlineData("0102030405060708090a0b0c0d0e0f10", 0, "9ac7cc9a609d1ef7b2932899cde41b97")] // 128-bit key, offset 0
    [InlineData("0102030405060708090a0b0c0d0e0f10", 16, "5248c4959014126a6e8a84f11d1a9e1c")] // offset 16
    public void Rc4MatchesRfc6229(string key, int offset, string keystream)
    {
        using var rc4 = Method("rc4").CreateStream(Convert.FromHexString(key), [], encrypt: true);
        var output = new byte[offset + 16];
        rc4.Process(new byte[output.Length], output);
        Assert.Equal(keystream, Convert.ToHexStringLower(output.AsSpan(offset)));
    }

    [Fact]
    public void ChaCha20BlockMatchesRfc8439AppendixA1()
    {
        // A.1 Test Vector #1: all-zero key and nonce, block counter 0.
        using var chacha = Method("chacha20-ietf").CreateStream(new byte[32], new byte[12], encrypt: true);
        var output = new byte[64];
        chacha.Process(new byte[64], output);
        Assert.Equal(
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586",
            Convert.ToHexStringLower(output));
    }

    [Fact]
    public void ChaCha20EncryptionMatchesRfc8439Section242()
    {
        // § 2.4.2: key 00..1f, nonce 000000000000004a00000000, initial counter 1 (so skip block 0 first).
        var key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        using var chacha = Method("chacha20-ietf").CreateStream(key, Convert.FromHexString("000000000000004a00000000"), encrypt: true);
        chacha.Process(new byte[64], new byte[64]);
        var plaintext = Encoding.ASCII.GetBytes(
            "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
        var output = new byte[plaintext.Length];
        chacha.Process(plaintext, output);
        Assert.Equal(
            "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b357"
            + "1639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
            + "5af90bbf74a35be6b40b8eedf2785e42874d",
            Convert.ToHexStringLower(output));
    }

    [Fact]
    public void HChaCha20MatchesXChaChaDraftSection221()
    {
        // draft-irtf-cfrg-xchacha § 2.2.1.
        var key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var subkey = new byte[32];
        HChaCha20.DeriveSubkey(key, Convert.FromHexString("000000090000004a0000000031415927"), subkey);
        Assert.Equal("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc", Convert.ToHexStringLower(subkey));
    }

    [Theory]
    [InlineData("aes-128-gcm", 16, "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf")] // GCM spec test case 2
    [InlineData("aes-192-gcm", 24, "98e7247c07f0fe411c267e4384b0f600", "2ff58d80033927ab8ef4d4587514f0fb")] // test case 8
    [InlineData("aes-256-gcm", 32, "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919")] // test case 14
    public void AesGcmMatchesTheGcmSpecification(string method, int keySize, string ciphertext, string tag)
    {
        // McGrew and Viega, "The Galois/Counter Mode of Operation": zero key, zero 96-bit IV, one zero block.
        using var aead = Method(method).CreateAead(new byte[keySize]);
        var body = new byte[16];
        var mac = new byte[16];
        aead.Encrypt(new byte[12], new byte[16], body, mac);
        Assert.Equal(ciphertext, Convert.ToHexStringLower(body));
        Assert.Equal(tag, Convert.ToHexStringLower(mac));
    }

    [Theory]
    [InlineData("0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9", // RFC 5869 A.4
        "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896")]
    [InlineData("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", // RFC 5869 A.6
        "0ac1af7002b3d761d1e55298da9d0506b9ae52057220a306e07b6b87e8df21d0ea00033de03984d34918")]
    public void HkdfSha1MatchesRfc5869(string ikm, string salt, string info, string okm)
    {
        var output = new byte[okm.Length / 2];
        KeyDerivation.HkdfSha1(Convert.FromHexString(ikm), Convert.FromHexString(salt), Convert.FromHexString(info), output);
        Assert.Equal(okm, Convert.ToHexStringLower(output));
    }

    private static CipherInfo Method(string name) =>
        CipherCatalog.TryGet(name, out var cipher) ? cipher : throw new InvalidOperationException($"{name} missing from the catalog");
}
