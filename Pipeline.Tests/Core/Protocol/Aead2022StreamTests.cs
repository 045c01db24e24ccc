using System.Net;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using static Shadowsocks.Pipeline.Tests.Core.Protocol.StreamCodecKit;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// The SIP022 TCP codec against itself: requests and responses at any split, the response bound to its request,
/// the timestamp window and tampering. Against a reference written separately from the spec: Sip022InteropTests.
/// </summary>
public sealed class Aead2022StreamTests
{
    private static readonly byte[] s_header = Header(ShadowsocksAddress.FromIp(IPAddress.Loopback, 8080));

    public static TheoryData<string> Methods() => CipherMethods.Sip022();

    [Theory]
    [MemberData(nameof(Methods))]
    public void Request_RandomSplits_DecryptsToTheHeaderAndData(string method)
    {
        var (cipher, psk) = Setup(method);
        var random = new Random(method.Length);
        for (var round = 0; round < 20; round++)
        {
            var data = RandomBytes(random, random.Next(0, 200_000));
            using var encryptor = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
            var wire = EncryptInPieces(encryptor, [.. s_header, .. data], random);
            using var decryptor = new Aead2022StreamDecryptor(cipher, psk, null, TimeProvider.System);

            var (status, plain) = DecryptInPieces(decryptor, wire, random);

            Assert.Equal(DecryptStatus.Ok, status);
            Assert.Equal([.. s_header, .. data], plain);
            Assert.Equal(encryptor.Salt.ToArray(), decryptor.Salt.ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Request_OneByteFeeds_DecryptsToTheHeaderAndData(string method)
    {
        var (cipher, psk) = Setup(method);
        var data = RandomBytes(new Random(1), 40_000);
        using var encryptor = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
        var wire = Encrypt(encryptor, [.. s_header, .. data]);
        using var decryptor = new Aead2022StreamDecryptor(cipher, psk, null, TimeProvider.System);

        var plain = new List<byte>();
        var output = new byte[wire.Length];
        foreach (var b in wire)
        {
            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt([b], output, out var written));
            plain.AddRange(output.AsSpan(0, written).ToArray());
        }

        Assert.Equal([.. s_header, .. data], plain);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Request_WithoutData_IsPaddedAndDecryptsToTheHeaderAlone(string method)
    {
        var (cipher, psk) = Setup(method);
        var sizes = new HashSet<int>();
        for (var i = 0; i < 20; i++)
        {
            using var encryptor = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
            var wire = Encrypt(encryptor, s_header);
            var unpadded = cipher.SaltSize + 11 + 16 + s_header.Length + 2 + 16;
            Assert.InRange(wire.Length, unpadded + 1, unpadded + 900);
            sizes.Add(wire.Length);

            using var decryptor = new Aead2022StreamDecryptor(cipher, psk, null, TimeProvider.System);
            var (status, plain) = DecryptInPieces(decryptor, wire, new Random(i));
            Assert.Equal(DecryptStatus.Ok, status);
            Assert.Equal(s_header, plain);
        }

        Assert.True(sizes.Count > 10, "the padding length is random");
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Request_SaltAndHeaders_LeaveInTheFirstOutput_WithTheFirstData(string method)
    {
        var (cipher, psk) = Setup(method);
        using var encryptor = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
        var first = Encrypt(encryptor, [.. s_header, .. "GET / HTTP/1.1\r\n\r\n"u8]);

        // salt | fixed header + tag | variable header (no padding: data came) + tag
        Assert.Equal(cipher.SaltSize + 11 + 16 + s_header.Length + 2 + 18 + 16, first.Length);
        Assert.Equal(encryptor.Salt.ToArray(), first[..cipher.SaltSize]);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Response_NamesTheRequestSalt_AndTheClientReadsIt(string method)
    {
        var (cipher, psk) = Setup(method);
        var random = new Random(3);
        using var clientOut = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
        using var serverIn = new Aead2022StreamDecryptor(cipher, psk, null, TimeProvider.System);
        var (requestStatus, _) = DecryptInPieces(serverIn, Encrypt(clientOut, s_header), random);
        Assert.Equal(DecryptStatus.Ok, requestStatus);

        using var serverOut = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), serverIn, TimeProvider.System);
        Assert.Equal(0, serverOut.Encrypt([], new byte[serverOut.MaxOutputSize(0)])); // the header waits for data
        var data = RandomBytes(random, 150_000);
        var wire = EncryptInPieces(serverOut, data, random);
        using var clientIn = new Aead2022StreamDecryptor(cipher, psk, clientOut, TimeProvider.System);

        var (status, plain) = DecryptInPieces(clientIn, wire, random);

        Assert.Equal(DecryptStatus.Ok, status);
        Assert.Equal(data, plain);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Response_ToAnotherRequest_IsRefused(string method)
    {
        var (cipher, psk) = Setup(method);
        using var request = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
        using var serverIn = new Aead2022StreamDecryptor(cipher, psk, null, TimeProvider.System);
        var output = new byte[1000];
        Assert.Equal(DecryptStatus.Ok, serverIn.Decrypt(Encrypt(request, s_header), output, out _));
        using var serverOut = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), serverIn, TimeProvider.System);
        var wire = Encrypt(serverOut, "hello"u8.ToArray());

        using var otherRequest = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
        using var clientIn = new Aead2022StreamDecryptor(cipher, psk, otherRequest, TimeProvider.System);
        var result = clientIn.Decrypt(wire, output, out var written);

        Assert.Equal(DecryptStatus.InvalidHeader, result);
        Assert.Equal(0, written);
        Assert.Equal(DecryptStatus.InvalidHeader, clientIn.Decrypt(wire, output, out _)); // and for good
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AResponseSaltSeenBefore_IsNotCheckedByTheClient_TheRequestSaltItNamesIs(string method)
    {
        // SIP022 § 3.1.5: clients SHOULD NOT check response salts; the request salt in the response header binds a
        // response to its request (Response_ToAnotherRequest_IsRefused). Two answers under one response salt, each to
        // its own request, both read.
        var (cipher, psk) = Setup(method);
        var time = new ManualTimeProvider();
        var responseSalt = Salt(cipher);
        DecryptStatus Answer()
        {
            using var request = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, time);
            using var serverIn = new Aead2022StreamDecryptor(cipher, psk, null, time);
            var output = new byte[1000];
            Assert.Equal(DecryptStatus.Ok, serverIn.Decrypt(Encrypt(request, s_header), output, out _));
            using var serverOut = new Aead2022StreamEncryptor(cipher, psk, responseSalt, serverIn, time);
            using var clientIn = new Aead2022StreamDecryptor(cipher, psk, request, time);
            return clientIn.Decrypt(Encrypt(serverOut, "reply"u8.ToArray()), output, out _);
        }

        Assert.Equal(DecryptStatus.Ok, Answer());
        Assert.Equal(DecryptStatus.Ok, Answer());
    }

    [Theory]
    [InlineData(1, 0, true)]
    [InlineData(900, 0, true)]
    [InlineData(900, 10, true)]
    [InlineData(901, 0, false)]
    [InlineData(901, 10, false)]
    [InlineData(0, 0, false)]
    public void Request_PaddingUpTo900_WithOrWithoutData_AndNeitherPaddingNorDataRefused(int padding, int data, bool accepted)
    {
        // SIP022 § 3.1.3 (MaxPaddingLength = 900) and § 3.1.4: padding or payload must be there. The request is made by
        // the reference (written from the spec), which pads as it is told.
        var (cipher, psk) = Setup("2022-blake3-aes-256-gcm");
        using var client = new Sip022Reference(cipher.Name, psk);
        var payload = RandomNumberGenerator.GetBytes(data);
        var wire = client.EncodeRequest(s_header, Sip022Reference.Now, padding, payload);
        using var decryptor = new Aead2022StreamDecryptor(cipher, psk, null, TimeProvider.System);
        var output = new byte[decryptor.MaxOutputSize(wire.Length)];

        var status = decryptor.Decrypt(wire, output, out var written);

        Assert.Equal(accepted ? DecryptStatus.Ok : DecryptStatus.InvalidHeader, status);
        Assert.Equal(accepted ? [.. s_header, .. payload] : [], output[..written]);
    }

    [Theory]
    [InlineData(-31, false)]
    [InlineData(-30, true)]
    [InlineData(30, true)]
    [InlineData(31, false)]
    [InlineData(-3600, false)]
    public void Request_TimestampOutsideThirtySeconds_IsAReplay(int senderAheadSeconds, bool accepted)
    {
        var expected = accepted ? DecryptStatus.Ok : DecryptStatus.StaleTimestamp;
        var (cipher, psk) = Setup("2022-blake3-aes-128-gcm");
        var receiverTime = new ManualTimeProvider();
        var senderTime = new ManualTimeProvider();
        senderTime.Advance(TimeSpan.FromHours(2));
        receiverTime.Advance(TimeSpan.FromHours(2) - TimeSpan.FromSeconds(senderAheadSeconds));
        using var encryptor = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, senderTime);
        using var decryptor = new Aead2022StreamDecryptor(cipher, psk, null, receiverTime);
        var output = new byte[1000];

        var status = decryptor.Decrypt(Encrypt(encryptor, [.. s_header, 1, 2, 3]), output, out var written);

        Assert.Equal(expected, status);
        Assert.Equal(expected == DecryptStatus.Ok ? s_header.Length + 3 : 0, written);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AnyFlippedBit_FailsTheStream_WithoutPlaintext(string method)
    {
        var (cipher, psk) = Setup(method);
        using var encryptor = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
        var wire = Encrypt(encryptor, [.. s_header, .. RandomBytes(new Random(5), 300)]);
        var output = new byte[wire.Length];
        for (var i = 0; i < wire.Length; i += 7)
        {
            var tampered = (byte[])wire.Clone();
            tampered[i] ^= (byte)(1 << (i % 8));
            using var decryptor = new Aead2022StreamDecryptor(cipher, psk, null, TimeProvider.System);
            var status = decryptor.Decrypt(tampered, output, out var written);
            Assert.Equal(DecryptStatus.AuthenticationFailed, status);
            Assert.Equal(0, written);
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AnotherKey_FailsAtTheFirstHeader(string method)
    {
        var (cipher, psk) = Setup(method);
        using var encryptor = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
        var wire = Encrypt(encryptor, s_header);
        var otherKey = RandomNumberGenerator.GetBytes(cipher.KeySize);
        using var decryptor = new Aead2022StreamDecryptor(cipher, otherKey, null, TimeProvider.System);

        // The salt and the fixed header (11 bytes + tag) are all it takes to tell.
        Assert.Equal(DecryptStatus.AuthenticationFailed, decryptor.Decrypt(wire.AsSpan(0, cipher.SaltSize + 27), new byte[64], out _));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void ReleaseKeySchedule_BetweenBursts_LeavesTheStreamUnchanged(string method)
    {
        var (cipher, psk) = Setup(method);
        using var encryptor = new Aead2022StreamEncryptor(cipher, psk, Salt(cipher), null, TimeProvider.System);
        using var decryptor = new Aead2022StreamDecryptor(cipher, psk, null, TimeProvider.System);
        var output = new byte[70_000];
        var plain = new List<byte>();
        byte[][] bursts = [[.. s_header, 9], RandomBytes(new Random(2), 20_000), [1, 2, 3]];
        foreach (var burst in bursts)
        {
            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(Encrypt(encryptor, burst), output, out var written));
            plain.AddRange(output.AsSpan(0, written).ToArray());
            encryptor.ReleaseKeySchedule();
            decryptor.ReleaseKeySchedule();
        }

        Assert.Equal(bursts.SelectMany(b => b), plain);
    }

    [Fact]
    public void Subkey_IsBlake3OfTheKeyAndSalt_SoEachSaltGivesAnotherStream()
    {
        var (cipher, psk) = Setup("2022-blake3-aes-256-gcm");
        var salt = Salt(cipher);
        using var first = new Aead2022StreamEncryptor(cipher, psk, salt, null, new ManualTimeProvider());
        using var same = new Aead2022StreamEncryptor(cipher, psk, salt, null, new ManualTimeProvider());
        salt[0] ^= 1;
        using var other = new Aead2022StreamEncryptor(cipher, psk, salt, null, new ManualTimeProvider());
        byte[] data = [.. s_header, 1, 2, 3, 4];

        var a = Encrypt(first, data);
        var b = Encrypt(same, data);
        var c = Encrypt(other, data);

        Assert.Equal(a, b); // same key, salt, time and data: same bytes (padding only comes without data)
        Assert.NotEqual(a.AsSpan(cipher.SaltSize).ToArray(), c.AsSpan(cipher.SaltSize).ToArray());
    }

    private static (CipherInfo Cipher, byte[] Psk) Setup(string method)
    {
        Assert.True(CipherCatalog.TryGet(method, out var cipher));
        Assert.True(cipher.Is2022);
        return (cipher, RandomNumberGenerator.GetBytes(cipher.KeySize));
    }

    private static byte[] Salt(CipherInfo cipher) => RandomNumberGenerator.GetBytes(cipher.SaltSize);

    /// <summary>The first piece carries the header, as the relay's first chunk does; the rest at random sizes.</summary>
    private static byte[] EncryptInPieces(IStreamEncryptor encryptor, byte[] plaintext, Random random)
    {
        var wire = new List<byte>();
        var offset = 0;
        while (offset < plaintext.Length)
        {
            var n = Math.Min(plaintext.Length - offset, offset == 0 ? Math.Max(s_header.Length, random.Next(1, 70_000)) : random.Next(1, 70_000));
            wire.AddRange(Encrypt(encryptor, plaintext[offset..(offset + n)]));
            offset += n;
        }

        return [.. wire];
    }
}
