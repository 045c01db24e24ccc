using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

/// <summary>
/// Every method without a published vector against output of this machine's OpenSSL, libsodium and OCB
/// (Vectors/make-vectors.sh names the command for each). Stream methods are also fed in pieces split at every
/// byte offset, since the relay hands them whatever a receive returned.
/// </summary>
public sealed class GeneratedVectorTests
{
    [Fact]
    public void EveryCatalogMethodExceptNoneHasAVector()
    {
        var covered = Vector.All.Select(v => v.Method).ToHashSet();
        var missing = CipherCatalog.All.Select(c => c.Name)
            .Where(n => n is not ("none" or "plain") && !covered.Contains(n) && !PublishedOnly.Contains(n))
            .ToList();
        Assert.Empty(missing);
    }

    [Theory]
    [MemberData(nameof(Vector.Methods), MemberType = typeof(Vector))]
    public void EncryptsAndDecryptsToTheReference(string method)
    {
        var vector = Vector.For(method);
        var cipher = Catalog(method);
        if (cipher.Family == CipherFamily.Aead)
        {
            using var aead = cipher.CreateAead(vector.Key);
            var body = new byte[vector.Plaintext.Length];
            var tag = new byte[aead.TagSize];
            aead.Encrypt(vector.Iv, vector.Plaintext, body, tag);
            Assert.Equal(Convert.ToHexString(vector.Ciphertext), Convert.ToHexString([.. body, .. tag]));

            var back = new byte[body.Length];
            Assert.True(aead.TryDecrypt(vector.Iv, body, tag, back));
            Assert.Equal(vector.Plaintext, back);
            return;
        }

        using (var encryptor = cipher.CreateStream(vector.Key, vector.Iv, encrypt: true))
        {
            var output = new byte[vector.Plaintext.Length];
            encryptor.Process(vector.Plaintext, output);
            Assert.Equal(Convert.ToHexString(vector.Ciphertext), Convert.ToHexString(output));
        }

        using var decryptor = cipher.CreateStream(vector.Key, vector.Iv, encrypt: false);
        var plain = new byte[vector.Ciphertext.Length];
        decryptor.Process(vector.Ciphertext, plain);
        Assert.Equal(vector.Plaintext, plain);
    }

    [Theory]
    [MemberData(nameof(StreamMethods))]
    public void StreamInputMaySplitAtAnyByte(string method)
    {
        var vector = Vector.For(method);
        var cipher = Catalog(method);
        for (var split = 0; split <= vector.Plaintext.Length; split++)
        {
            using var encryptor = cipher.CreateStream(vector.Key, vector.Iv, encrypt: true);
            var output = new byte[vector.Plaintext.Length];
            encryptor.Process(vector.Plaintext.AsSpan(0, split), output.AsSpan(0, split));
            encryptor.Process(vector.Plaintext.AsSpan(split), output.AsSpan(split));
            Assert.Equal(vector.Ciphertext, output);
        }

        // One byte at a time, decrypting in place.
        using var decryptor = cipher.CreateStream(vector.Key, vector.Iv, encrypt: false);
        var buffer = vector.Ciphertext.ToArray();
        for (var i = 0; i < buffer.Length; i++)
        {
            decryptor.Process(buffer.AsSpan(i, 1), buffer.AsSpan(i, 1));
        }

        Assert.Equal(vector.Plaintext, buffer);
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void AeadRejectsAnyFlippedBitWithoutWritingPlaintext(string method)
    {
        var vector = Vector.For(method);
        using var aead = Catalog(method).CreateAead(vector.Key);
        var body = vector.Ciphertext[..vector.Plaintext.Length];
        var tag = vector.Ciphertext[vector.Plaintext.Length..];
        foreach (var position in new[] { 0, body.Length / 2, body.Length - 1, body.Length, body.Length + 15 })
        {
            var tamperedBody = body.ToArray();
            var tamperedTag = tag.ToArray();
            if (position < body.Length)
            {
                tamperedBody[position] ^= 0x01;
            }
            else
            {
                tamperedTag[position - body.Length] ^= 0x80;
            }

            var output = new byte[body.Length];
            Assert.False(aead.TryDecrypt(vector.Iv, tamperedBody, tamperedTag, output));
            Assert.All(output, b => Assert.Equal(0, b));
        }

        var wrongNonce = vector.Iv.ToArray();
        wrongNonce[0] ^= 1;
        Assert.False(aead.TryDecrypt(wrongNonce, body, tag, new byte[body.Length]));
    }

    public static TheoryData<string> StreamMethods() => Filter(CipherFamily.Stream);

    public static TheoryData<string> AeadMethods() => Filter(CipherFamily.Aead);

    /// <summary>Methods proven by published vectors only (PublishedVectorTests).</summary>
    /// <summary>
    /// Methods checked against published vectors only. The 2022 methods are the AEADs above under BLAKE3 subkeys
    /// (Blake3DeriveKeyTests: the published BLAKE3 vectors) and are checked against a reference written from SIP022
    /// (Sip022InteropTests): no tool on this machine makes their streams.
    /// </summary>
    private static readonly HashSet<string> PublishedOnly =
        ["aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "idea-cfb", "2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305"];

    private static TheoryData<string> Filter(CipherFamily family)
    {
        var data = new TheoryData<string>();
        foreach (var vector in Vector.All.Where(v => Catalog(v.Method).Family == family))
        {
            data.Add(vector.Method);
        }

        return data;
    }

    private static CipherInfo Catalog(string method) =>
        CipherCatalog.TryGet(method, out var cipher) ? cipher : throw new InvalidOperationException($"{method} missing from the catalog");
}
