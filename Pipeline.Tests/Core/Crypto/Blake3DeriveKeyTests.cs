using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Parameters;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

/// <summary>
/// BLAKE3 <c>derive_key</c>, which SIP022 uses for its session subkeys: BouncyCastle against the official BLAKE3 test
/// vectors (BLAKE3-team/BLAKE3, test_vectors/test_vectors.json), then <see cref="KeyDerivation.Blake3SessionSubkey"/>
/// against BouncyCastle with the 2022 context over PSK || salt.
/// </summary>
public sealed class Blake3DeriveKeyTests
{
    /// <summary>The vectors' context string (the file's <c>context_string</c>).</summary>
    private const string VectorContext = "BLAKE3 2019-12-27 16:29:52 test vectors context";

    /// <summary>SIP022 § 2.2.</summary>
    private const string SessionSubkeyContext = "shadowsocks 2022 session subkey";

    /// <summary>
    /// Input length and the <c>derive_key</c> output of test_vectors.json (131 bytes of extended output each; the first
    /// 32 bytes are the default-length output). The input is bytes 0, 1, ..., 250, 0, 1, ... (i % 251).
    /// </summary>
    public static TheoryData<int, string> DeriveKeyVectors() => new()
    {
        { 0, "2cc39783c223154fea8dfb7c1b1660f2ac2dcbd1c1de8277b0b0dd39b7e50d7d905630c8be290dfcf3e6842f13bddd573c098c3f17361f1f206b8cad9d088aa4a3f746752c6b0ce6a83b0da81d59649257cdf8eb3e9f7d4998e41021fac119deefb896224ac99f860011f73609e6e0e4540f93b273e56547dfd3aa1a035ba6689d89a0" },
        { 1, "b3e2e340a117a499c6cf2398a19ee0d29cca2bb7404c73063382693bf66cb06c5827b91bf889b6b97c5477f535361caefca0b5d8c4746441c57617111933158950670f9aa8a05d791daae10ac683cbef8faf897c84e6114a59d2173c3f417023a35d6983f2c7dfa57e7fc559ad751dbfb9ffab39c2ef8c4aafebc9ae973a64f0c76551" },
        { 1023, "74a16c1c3d44368a86e1ca6df64be6a2f64cce8f09220787450722d85725dea59c413264404661e9e4d955409dfe4ad3aa487871bcd454ed12abfe2c2b1eb7757588cf6cb18d2eccad49e018c0d0fec323bec82bf1644c6325717d13ea712e6840d3e6e730d35553f59eff5377a9c350bcc1556694b924b858f329c44ee64b884ef00d" },
        { 1024, "7356cd7720d5b66b6d0697eb3177d9f8d73a4a5c5e968896eb6a6896843027066c23b601d3ddfb391e90d5c8eccdef4ae2a264bce9e612ba15e2bc9d654af1481b2e75dbabe615974f1070bba84d56853265a34330b4766f8e75edd1f4a1650476c10802f22b64bd3919d246ba20a17558bc51c199efdec67e80a227251808d8ce5bad" },
        { 1025, "effaa245f065fbf82ac186839a249707c3bddf6d3fdda22d1b95a3c970379bcb5d31013a167509e9066273ab6e2123bc835b408b067d88f96addb550d96b6852dad38e320b9d940f86db74d398c770f462118b35d2724efa13da97194491d96dd37c3c09cbef665953f2ee85ec83d88b88d11547a6f911c8217cca46defa2751e7f3ad" },
        { 2048, "7b2945cb4fef70885cc5d78a87bf6f6207dd901ff239201351ffac04e1088a23e2c11a1ebffcea4d80447867b61badb1383d842d4e79645d48dd82ccba290769caa7af8eaa1bd78a2a5e6e94fbdab78d9c7b74e894879f6a515257ccf6f95056f4e25390f24f6b35ffbb74b766202569b1d797f2d4bd9d17524c720107f985f4ddc583" },
        { 3073, "72613c9ec9ff7e40f8f5c173784c532ad852e827dba2bf85b2ab4b76f7079081576288e552647a9d86481c2cae75c2dd4e7c5195fb9ada1ef50e9c5098c249d743929191441301c69e1f48505a4305ec1778450ee48b8e69dc23a25960fe33070ea549119599760a8a2d28aeca06b8c5e9ba58bc19e11fe57b6ee98aa44b2a8e6b14a5" },
        { 4097, "aca51029626b55fda7117b42a7c211f8c6e9ba4fe5b7a8ca922f34299500ead8a897f66a400fed9198fd61dd2d58d382458e64e100128075fc54b860934e8de2e84170734b06e1d212a117100820dbc48292d148afa50567b8b84b1ec336ae10d40c8c975a624996e12de31abbe135d9d159375739c333798a80c64ae895e51e22f3ad" },
        { 7169, "554b0a5efea9ef183f2f9b931b7497995d9eb26f5c5c6dad2b97d62fc5ac31d99b20652c016d88ba2a611bbd761668d5eda3e568e940faae24b0d9991c3bd25a65f770b89fdcadabcb3d1a9c1cb63e69721cacf1ae69fefdcef1e3ef41bc5312ccc17222199e47a26552c6adc460cf47a72319cb5039369d0060eaea59d6c65130f1dd" },
    };

    [Theory]
    [MemberData(nameof(DeriveKeyVectors))]
    public void BouncyCastle_DefaultLength_MatchesOfficialVector(int inputLength, string expected)
    {
        var output = new byte[32];
        var digest = NewDeriveKey(VectorContext);
        var input = VectorInput(inputLength);
        digest.BlockUpdate(input, 0, input.Length);
        Assert.Equal(32, digest.DoFinal(output, 0));
        Assert.Equal(expected[..64], Convert.ToHexStringLower(output));
    }

    [Theory]
    [MemberData(nameof(DeriveKeyVectors))]
    public void BouncyCastle_ExtendedOutput_MatchesOfficialVector(int inputLength, string expected)
    {
        var output = new byte[expected.Length / 2];
        var digest = NewDeriveKey(VectorContext);
        var input = VectorInput(inputLength);
        digest.BlockUpdate(input, 0, input.Length);
        digest.OutputFinal(output);
        Assert.Equal(expected, Convert.ToHexStringLower(output));
    }

    [Theory]
    [MemberData(nameof(DeriveKeyVectors))]
    public void BouncyCastle_SixteenByteOutput_IsThePrefix(int inputLength, string expected)
    {
        // The 16-byte key of 2022-blake3-aes-128-gcm is derive_key's output read to 16 bytes: a prefix of the XOF stream.
        var output = new byte[16];
        var digest = NewDeriveKey(VectorContext);
        var input = VectorInput(inputLength);
        digest.BlockUpdate(input, 0, input.Length);
        digest.OutputFinal(output);
        Assert.Equal(expected[..32], Convert.ToHexStringLower(output));
    }

    [Fact]
    public void BouncyCastle_InputFedInPieces_SameAsAtOnce()
    {
        var input = VectorInput(4097);
        var digest = NewDeriveKey(VectorContext);
        for (var offset = 0; offset < input.Length; offset += 333)
        {
            digest.BlockUpdate(input, offset, Math.Min(333, input.Length - offset));
        }

        var output = new byte[32];
        digest.DoFinal(output, 0);
        Assert.Equal("aca51029626b55fda7117b42a7c211f8c6e9ba4fe5b7a8ca922f34299500ead8", Convert.ToHexStringLower(output));
    }

    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    public void Blake3SessionSubkey_Is2022DeriveKeyOverPskAndSalt(int keySize)
    {
        var psk = RandomNumberGenerator.GetBytes(keySize);
        var salt = RandomNumberGenerator.GetBytes(keySize);
        var subkey = new byte[keySize];
        KeyDerivation.Blake3SessionSubkey(psk, salt, subkey);
        Assert.Equal(Convert.ToHexStringLower(Expected(psk, salt, keySize)), Convert.ToHexStringLower(subkey));
    }

    [Fact]
    public void Blake3SessionSubkey_FixedInputs_MatchBouncyCastle()
    {
        // PSK bytes 0..31 and salt bytes 32..63: deterministic, so a change in either order or context shows here.
        var psk = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var salt = Enumerable.Range(32, 32).Select(i => (byte)i).ToArray();
        var subkey = new byte[32];
        KeyDerivation.Blake3SessionSubkey(psk, salt, subkey);
        Assert.Equal(Expected(psk, salt, 32), subkey);

        var swapped = Expected(salt, psk, 32);
        Assert.NotEqual(swapped, subkey);

        var short16 = new byte[16];
        KeyDerivation.Blake3SessionSubkey(psk[..16], salt[..16], short16);
        Assert.Equal(Expected(psk[..16], salt[..16], 16), short16);
    }

    [Fact]
    public void Blake3SessionSubkey_DependsOnEverySaltByte()
    {
        var psk = RandomNumberGenerator.GetBytes(32);
        var salt = RandomNumberGenerator.GetBytes(32);
        var reference = new byte[32];
        KeyDerivation.Blake3SessionSubkey(psk, salt, reference);
        for (var i = 0; i < salt.Length; i++)
        {
            var changed = salt.ToArray();
            changed[i] ^= 1;
            var subkey = new byte[32];
            KeyDerivation.Blake3SessionSubkey(psk, changed, subkey);
            Assert.NotEqual(reference, subkey);
        }
    }

    private static Blake3Digest NewDeriveKey(string context)
    {
        var digest = new Blake3Digest(256); // size in bits
        digest.Init(Blake3Parameters.Context(Encoding.ASCII.GetBytes(context)));
        return digest;
    }

    private static byte[] VectorInput(int length)
    {
        var input = new byte[length];
        for (var i = 0; i < length; i++)
        {
            input[i] = (byte)(i % 251);
        }

        return input;
    }

    private static byte[] Expected(byte[] psk, byte[] salt, int keySize)
    {
        var digest = NewDeriveKey(SessionSubkeyContext);
        byte[] material = [.. psk, .. salt];
        digest.BlockUpdate(material, 0, material.Length);
        var output = new byte[keySize];
        digest.OutputFinal(output);
        return output;
    }
}
