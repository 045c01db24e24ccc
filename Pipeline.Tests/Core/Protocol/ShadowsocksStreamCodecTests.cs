using System.Buffers.Binary;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

public sealed class ShadowsocksStreamCodecTests
{
    private const int MaxPayload = 0x3FFF;
    private const int Tag = 16;

    public static TheoryData<string> AllMethods() => CipherMethods.All();

    public static TheoryData<string> AeadMethods() => CipherMethods.Aead();

    public static TheoryData<string> EncryptingMethods() => CipherMethods.Encrypting();

    public static TheoryData<string> AllocationFreeMethods() => CipherMethods.AllocationFree();

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void RoundTrip_RandomSplits_RestoresInput(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var random = new Random(method.GetHashCode(StringComparison.Ordinal));
        var plaintext = RandomBytes(random, 200 * 1024);

        var ciphertext = EncryptInPieces(cipher, key, plaintext, random);
        var (status, decrypted) = DecryptInPieces(cipher, key, ciphertext, random, maxPiece: 40_000);

        Assert.Equal(DecryptStatus.Ok, status);
        Assert.Equal(plaintext, decrypted);
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void RoundTrip_OneByteFeeds_RestoresInput(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var random = new Random(7);
        var plaintext = RandomBytes(random, 40_000);

        var ciphertext = EncryptInPieces(cipher, key, plaintext, random);
        var (status, decrypted) = DecryptInPieces(cipher, key, ciphertext, random, maxPiece: 1);

        Assert.Equal(DecryptStatus.Ok, status);
        Assert.Equal(plaintext, decrypted);
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void Encrypt_FirstCallOnly_EmitsFreshSalt(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        using var first = ShadowsocksStreamCodec.CreateEncryptor(cipher, key);
        using var second = ShadowsocksStreamCodec.CreateEncryptor(cipher, key);
        var data = new byte[100];

        var a = new byte[first.MaxOutputSize(data.Length)];
        var aLength = first.Encrypt(data, a);
        var b = new byte[second.MaxOutputSize(data.Length)];
        second.Encrypt(data, b);
        var again = new byte[first.MaxOutputSize(data.Length)];
        var againLength = first.Encrypt(data, again);

        Assert.Equal(a.Length, aLength);
        Assert.Equal(cipher.SaltSize + again.Length, a.Length);
        Assert.Equal(again.Length, againLength);
        if (cipher.SaltSize > 0)
        {
            Assert.NotEqual(a[..cipher.SaltSize], b[..cipher.SaltSize]);
        }
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void Encrypt_AeadSizes_AreChunked(string method)
    {
        var cipher = CipherMethods.Get(method);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, CipherMethods.MasterKey(cipher));

        Assert.Equal(cipher.SaltSize, encryptor.MaxOutputSize(0));
        Assert.Equal(cipher.SaltSize, encryptor.Encrypt([], new byte[cipher.SaltSize]));
        Assert.Equal(0, encryptor.MaxOutputSize(0));
        Assert.Equal(1 + 34, encryptor.MaxOutputSize(1));
        Assert.Equal(MaxPayload + 34, encryptor.MaxOutputSize(MaxPayload));
        Assert.Equal(MaxPayload + 1 + 68, encryptor.MaxOutputSize(MaxPayload + 1));
        Assert.Equal(MaxPayload + 1 + 68, encryptor.Encrypt(new byte[MaxPayload + 1], new byte[MaxPayload + 1 + 68]));
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void Decrypt_FlippedBit_FailsAndWithholdsThatChunk(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var plaintext = RandomBytes(new Random(3), (2 * MaxPayload) + 100);
        var ciphertext = EncryptOnce(cipher, key, plaintext);
        var salt = cipher.SaltSize;
        int[] chunkStarts = [salt, salt + MaxPayload + 34, salt + (2 * (MaxPayload + 34))];
        Assert.Equal(chunkStarts[2] + 100 + 34, ciphertext.Length);

        var positions = new List<int> { 0, salt / 2, salt - 1 };
        foreach (var start in chunkStarts)
        {
            // the sealed length, its tag, the payload (first, middle, last byte) and the payload's tag
            positions.AddRange([start, start + 1, start + 2, start + 17, start + 18, start + 50]);
        }

        positions.AddRange([chunkStarts[1] - Tag - 1, chunkStarts[1] - Tag, chunkStarts[1] - 1, chunkStarts[2] - 1, ciphertext.Length - 1]);
        var random = new Random(5);
        foreach (var position in positions)
        {
            var tampered = (byte[])ciphertext.Clone();
            tampered[position] ^= (byte)(1 << random.Next(8));
            var chunk = position < salt ? 0 : Array.FindLastIndex(chunkStarts, s => s <= position);
            var intact = chunk * MaxPayload;

            using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
            var output = new byte[decryptor.MaxOutputSize(tampered.Length)];
            var status = decryptor.Decrypt(tampered, output, out var written);

            Assert.Equal(DecryptStatus.AuthenticationFailed, status);
            Assert.Equal(intact, written);
            Assert.Equal(plaintext[..intact], output[..written]);
            Assert.All(output[written..], b => Assert.Equal(0, b));
            Assert.Equal(DecryptStatus.AuthenticationFailed, decryptor.Decrypt(ciphertext, output, out written));
            Assert.Equal(0, written);

            var (splitStatus, splitPlaintext) = DecryptInPieces(cipher, key, tampered, random, maxPiece: 5000);
            Assert.Equal(DecryptStatus.AuthenticationFailed, splitStatus);
            Assert.Equal(plaintext[..intact], splitPlaintext);
        }
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void Decrypt_LengthOverMax_IsInvalidChunkLength(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        foreach (var badLength in new ushort[] { 0x4000, 0x8000, 0xFFFF })
        {
            var salt = RandomNumberGenerator.GetBytes(cipher.SaltSize);
            var subkey = new byte[cipher.KeySize];
            KeyDerivation.SessionSubkey(key, salt, subkey);
            using var aead = cipher.CreateAead(subkey);
            var nonce = new byte[aead.NonceSize];
            var sealedLength = new byte[2 + Tag];
            BinaryPrimitives.WriteUInt16BigEndian(sealedLength, badLength);
            aead.Encrypt(nonce, sealedLength.AsSpan(0, 2), sealedLength.AsSpan(0, 2), sealedLength.AsSpan(2));
            var stream = salt.Concat(sealedLength).Concat(new byte[100]).ToArray();

            using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
            var output = new byte[decryptor.MaxOutputSize(stream.Length)];

            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(stream.AsSpan(0, salt.Length + 17), output, out _));
            Assert.Equal(DecryptStatus.InvalidChunkLength, decryptor.Decrypt(stream.AsSpan(salt.Length + 17), output, out var written));
            Assert.Equal(0, written);
            Assert.Equal(DecryptStatus.InvalidChunkLength, decryptor.Decrypt(stream, output, out written));
            Assert.Equal(0, written);
        }
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void Decrypt_ZeroLengthChunk_IsAcceptedAndWritesNothing(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var salt = RandomNumberGenerator.GetBytes(cipher.SaltSize);
        var subkey = new byte[cipher.KeySize];
        KeyDerivation.SessionSubkey(key, salt, subkey);
        using var aead = cipher.CreateAead(subkey);
        var nonce = new byte[aead.NonceSize];
        var stream = new byte[salt.Length + 2 + Tag + Tag + 2 + Tag + 3 + Tag];
        salt.CopyTo(stream, 0);
        var at = salt.Length;
        aead.Encrypt(nonce, new byte[2], stream.AsSpan(at, 2), stream.AsSpan(at + 2, Tag));
        nonce[0] = 1;
        aead.Encrypt(nonce, [], [], stream.AsSpan(at + 2 + Tag, Tag));
        at += 2 + Tag + Tag;
        nonce[0] = 2;
        aead.Encrypt(nonce, [0, 3], stream.AsSpan(at, 2), stream.AsSpan(at + 2, Tag));
        nonce[0] = 3;
        aead.Encrypt(nonce, "abc"u8, stream.AsSpan(at + 2 + Tag, 3), stream.AsSpan(at + 2 + Tag + 3, Tag));

        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
        var output = new byte[decryptor.MaxOutputSize(stream.Length)];

        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(stream, output, out var written));
        Assert.Equal("abc"u8.ToArray(), output[..written]);
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void Decrypt_EmptyInput_IsOkAndWritesNothing(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var ciphertext = EncryptOnce(cipher, key, [1, 2, 3]);
        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
        var output = new byte[decryptor.MaxOutputSize(ciphertext.Length)];

        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt([], output, out var written));
        Assert.Equal(0, written);
        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(ciphertext, output, out written));
        Assert.Equal(new byte[] { 1, 2, 3 }, output[..written]);
        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt([], output, out written));
        Assert.Equal(0, written);
    }

    [Theory]
    [MemberData(nameof(EncryptingMethods))]
    public void Decrypt_WrongKey_NeverYieldsThePlaintext(string method)
    {
        var cipher = CipherMethods.Get(method);
        var plaintext = RandomBytes(new Random(29), 5000);
        var ciphertext = EncryptOnce(cipher, CipherMethods.MasterKey(cipher), plaintext);
        var wrongKey = KeyDerivation.MasterKeyFromPassword(cipher, "not the password");
        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, wrongKey);
        var output = new byte[decryptor.MaxOutputSize(ciphertext.Length)];

        var status = decryptor.Decrypt(ciphertext, output, out var written);

        if (cipher.Family == CipherFamily.Aead)
        {
            Assert.Equal(DecryptStatus.AuthenticationFailed, status);
            Assert.Equal(0, written);
        }
        else
        {
            Assert.NotEqual(plaintext, output[..written]);
        }
    }

    [Theory]
    [MemberData(nameof(AeadMethods))]
    public void Decrypt_TruncatedStream_WritesOnlyWholeChunks(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var plaintext = RandomBytes(new Random(11), MaxPayload + 10);
        var ciphertext = EncryptOnce(cipher, key, plaintext);
        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
        var output = new byte[decryptor.MaxOutputSize(ciphertext.Length)];

        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(ciphertext.AsSpan(0, ciphertext.Length - 1), output, out var written));
        Assert.Equal(MaxPayload, written);
        Assert.Equal(plaintext[..MaxPayload], output[..written]);
        Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(ciphertext.AsSpan(ciphertext.Length - 1), output, out written));
        Assert.Equal(plaintext[MaxPayload..], output[..written]);
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void Decrypt_RandomBytes_NeverThrows(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        var random = new Random(13);
        for (var i = 0; i < 50; i++)
        {
            var garbage = RandomBytes(random, random.Next(0, 300));
            var (status, plaintext) = DecryptInPieces(cipher, key, garbage, random, maxPiece: 64);
            if (cipher.Family == CipherFamily.Aead)
            {
                Assert.Empty(plaintext);
                Assert.NotEqual(DecryptStatus.InvalidChunkLength, status);
            }
        }
    }

    [Theory]
    [InlineData("aes-128-gcm")]
    [InlineData("aes-192-gcm")]
    [InlineData("aes-256-gcm")]
    [InlineData("chacha20-ietf-poly1305")]
    public void Encrypt_FixedSalt_MatchesIndependentComputation(string method)
    {
        var cipher = CipherMethods.Get(method);
        var master = Enumerable.Range(0, cipher.KeySize).Select(i => (byte)(0xA0 + i)).ToArray();
        var salt = Enumerable.Range(0, cipher.SaltSize).Select(i => (byte)(3 * i)).ToArray();
        var plaintext = RandomBytes(new Random(17), MaxPayload + 5);

        using var encryptor = ShadowsocksStreamCodec.CreateEncryptorWithSalt(cipher, master, salt);
        var actual = new byte[encryptor.MaxOutputSize(plaintext.Length)];
        Assert.Equal(actual.Length, encryptor.Encrypt(plaintext, actual));

        var subkey = HKDF.DeriveKey(HashAlgorithmName.SHA1, master, cipher.KeySize, salt, "ss-subkey"u8.ToArray());
        using IDisposable primitive = method.StartsWith("aes", StringComparison.Ordinal) ? new AesGcm(subkey, Tag) : new ChaCha20Poly1305(subkey);
        var expected = new List<byte>(salt);
        expected.AddRange(Seal(primitive, 0, [0x3F, 0xFF]));
        expected.AddRange(Seal(primitive, 1, plaintext[..MaxPayload]));
        expected.AddRange(Seal(primitive, 2, [0x00, 0x05]));
        expected.AddRange(Seal(primitive, 3, plaintext[MaxPayload..]));

        Assert.Equal(expected.ToArray(), actual);
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void ReleaseKeySchedule_BetweenBursts_LeavesTheStreamUnchanged(string method)
    {
        // The relay gives back the key schedule whenever a connection goes quiet; the bytes on the wire must be
        // exactly those of a stream that never did, and the far side must read them whether or not it released too.
        var cipher = CipherMethods.Get(method);
        var master = CipherMethods.MasterKey(cipher);
        var salt = Enumerable.Range(0, cipher.SaltSize).Select(i => (byte)(7 * i)).ToArray();
        var bursts = Enumerable.Range(1, 6).Select(i => RandomBytes(new Random(i), (i * 3001) % (MaxPayload + 900))).ToArray();

        byte[] Encrypt(bool release)
        {
            using var encryptor = ShadowsocksStreamCodec.CreateEncryptorWithSalt(cipher, master, salt);
            var wire = new List<byte>();
            foreach (var burst in bursts)
            {
                var output = new byte[encryptor.MaxOutputSize(burst.Length)];
                wire.AddRange(output.AsSpan(0, encryptor.Encrypt(burst, output)).ToArray());
                if (release)
                {
                    encryptor.ReleaseKeySchedule();
                }
            }

            return [.. wire];
        }

        var released = Encrypt(release: true);
        Assert.Equal(Encrypt(release: false), released);

        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, master);
        var plaintext = new List<byte>();
        var output = new byte[released.Length];
        for (var offset = 0; offset < released.Length; offset += 5000)
        {
            var piece = released.AsSpan(offset, Math.Min(5000, released.Length - offset));
            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(piece, output, out var written));
            plaintext.AddRange(output.AsSpan(0, written).ToArray());
            decryptor.ReleaseKeySchedule();
        }

        Assert.Equal(bursts.SelectMany(b => b).ToArray(), plaintext.ToArray());
    }

    [Theory]
    [MemberData(nameof(AllocationFreeMethods))]
    public void EncryptDecrypt_SteadyState_AllocatesNothing(string method)
    {
        var cipher = CipherMethods.Get(method);
        var key = CipherMethods.MasterKey(cipher);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, key);
        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
        var plaintext = RandomBytes(new Random(19), 16 * 1024);
        var ciphertext = new byte[encryptor.MaxOutputSize(plaintext.Length)];
        var output = new byte[ciphertext.Length + 64 * 1024];

        void Round()
        {
            var n = encryptor.Encrypt(plaintext, ciphertext);

            // Feed in three uneven pieces so units are both opened in place and carried over.
            var piece = n / 3;
            var status = decryptor.Decrypt(ciphertext.AsSpan(0, piece), output, out _);
            status |= decryptor.Decrypt(ciphertext.AsSpan(piece, piece + 7), output, out _);
            status |= decryptor.Decrypt(ciphertext.AsSpan((2 * piece) + 7, n - (2 * piece) - 7), output, out _);
            if (status != DecryptStatus.Ok)
            {
                // Not Assert.Equal: its comparer allocates, and this runs inside the measured loop.
                throw new InvalidOperationException($"decrypt failed: {status}");
            }
        }

        for (var i = 0; i < 20; i++)
        {
            Round();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 64; i++)
        {
            Round();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static byte[] Seal(IDisposable primitive, byte counter, byte[] plaintext)
    {
        var nonce = new byte[12];
        nonce[0] = counter;
        var sealedBytes = new byte[plaintext.Length + Tag];
        var ciphertext = sealedBytes.AsSpan(0, plaintext.Length);
        var tag = sealedBytes.AsSpan(plaintext.Length);
        if (primitive is AesGcm aes)
        {
            aes.Encrypt(nonce, plaintext, ciphertext, tag);
        }
        else
        {
            ((ChaCha20Poly1305)primitive).Encrypt(nonce, plaintext, ciphertext, tag);
        }

        return sealedBytes;
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] EncryptOnce(CipherInfo cipher, byte[] key, byte[] plaintext)
    {
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, key);
        var output = new byte[encryptor.MaxOutputSize(plaintext.Length)];
        return output[..encryptor.Encrypt(plaintext, output)];
    }

    private static byte[] EncryptInPieces(CipherInfo cipher, byte[] key, byte[] plaintext, Random random)
    {
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, key);
        using var result = new MemoryStream();
        var offset = 0;
        while (offset < plaintext.Length)
        {
            var n = Math.Min(plaintext.Length - offset, random.Next(4) == 0 ? random.Next(0, 3) : random.Next(1, 50_000));
            var output = new byte[encryptor.MaxOutputSize(n)];
            var written = encryptor.Encrypt(plaintext.AsSpan(offset, n), output);
            Assert.True(written <= output.Length);
            result.Write(output, 0, written);
            offset += n;
        }

        return result.ToArray();
    }

    /// <summary>Feeds the ciphertext in random pieces (a third of them one byte) up to <paramref name="maxPiece"/>; stops at the first failure.</summary>
    private static (DecryptStatus Status, byte[] Plaintext) DecryptInPieces(CipherInfo cipher, byte[] key, byte[] ciphertext, Random random, int maxPiece)
    {
        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
        using var result = new MemoryStream();
        var offset = 0;
        while (offset < ciphertext.Length)
        {
            var n = Math.Min(ciphertext.Length - offset, random.Next(3) == 0 ? 1 : random.Next(1, maxPiece + 1));
            var output = new byte[decryptor.MaxOutputSize(n)];
            var status = decryptor.Decrypt(ciphertext.AsSpan(offset, n), output, out var written);
            Assert.True(written <= output.Length);
            result.Write(output, 0, written);
            offset += n;
            if (status != DecryptStatus.Ok)
            {
                return (status, result.ToArray());
            }
        }

        return (DecryptStatus.Ok, result.ToArray());
    }
}
