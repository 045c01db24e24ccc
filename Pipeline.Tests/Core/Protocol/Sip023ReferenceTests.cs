using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// The test-side SIP023 reference checked on its own: known answers for its primitives (BLAKE3's published vectors,
/// FIPS-197's AES blocks), each header recomputed step by step, and round trips through the processor and server
/// roles that must fail under a wrong key, salt or user.
/// </summary>
public sealed class Sip023ReferenceTests
{
    private const string Blake3TestContext = "BLAKE3 2019-12-27 16:29:52 test vectors context";

    public static TheoryData<string> Methods() => new(Sip023Reference.Methods);

    [Theory]
    [InlineData(0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")]
    [InlineData(1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213")]
    [InlineData(1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7")]
    public void Hash_MatchesBlake3TestVectors(int inputLength, string expected)
    {
        // BLAKE3 test_vectors.json: input byte i is i % 251; "hash", first 32 bytes.
        Assert.Equal(Convert.FromHexString(expected), Sip023Reference.Hash(Blake3Input(inputLength)));
        Assert.Equal(Convert.FromHexString(expected)[..16], Sip023Reference.UserHash(Blake3Input(inputLength)));
    }

    [Theory]
    [InlineData(0, "2cc39783c223154fea8dfb7c1b1660f2ac2dcbd1c1de8277b0b0dd39b7e50d7d")]
    [InlineData(1, "b3e2e340a117a499c6cf2398a19ee0d29cca2bb7404c73063382693bf66cb06c")]
    public void DeriveKey_MatchesBlake3TestVectors_AndIsAPrefixStableXof(int inputLength, string expected)
    {
        Assert.Equal(Convert.FromHexString(expected), Sip023Reference.DeriveKey(Blake3TestContext, Blake3Input(inputLength), 32));
        Assert.Equal(Convert.FromHexString(expected)[..16], Sip023Reference.DeriveKey(Blake3TestContext, Blake3Input(inputLength), 16));
    }

    [Theory]
    [InlineData("000102030405060708090a0b0c0d0e0f", "69c4e0d86a7b0430d8cdb78070b4c55a")]
    [InlineData("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "8ea2b7ca516745bfeafc49904b496089")]
    public void EncryptBlock_MatchesFips197AppendixC(string key, string expected)
    {
        var plaintext = Convert.FromHexString("00112233445566778899aabbccddeeff");
        Assert.Equal(Convert.FromHexString(expected), Sip023Reference.EncryptBlock(Convert.FromHexString(key), plaintext));
        Assert.Equal(plaintext, Sip023Reference.DecryptBlock(Convert.FromHexString(key), Convert.FromHexString(expected)));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void TcpIdentityHeaders_RecomputedStepByStep_FromTheSpecText(string method)
    {
        var size = Sip023Reference.KeySize(method);
        var (ipsk0, ipsk1, upsk) = (Key(size), Key(size), Key(size));
        var salt = Key(size);

        var headers = Sip023Reference.TcpIdentityHeaders([ipsk0, ipsk1], upsk, salt);

        Assert.Equal(32, headers.Length);
        var subkey0 = Sip023Reference.DeriveKey("shadowsocks 2022 identity subkey", [.. ipsk0, .. salt], size);
        var subkey1 = Sip023Reference.DeriveKey("shadowsocks 2022 identity subkey", [.. ipsk1, .. salt], size);
        Assert.Equal(Sip023Reference.Hash(ipsk1)[..16], Sip023Reference.DecryptBlock(subkey0, headers.AsSpan(0, 16)));
        Assert.Equal(Sip023Reference.Hash(upsk)[..16], Sip023Reference.DecryptBlock(subkey1, headers.AsSpan(16, 16)));
        Assert.NotEqual(subkey0, Sip023Reference.DeriveKey("shadowsocks 2022 session subkey", [.. ipsk0, .. salt], size)); // the contexts differ
        Assert.NotEqual(headers, Sip023Reference.TcpIdentityHeaders([ipsk0, ipsk1], upsk, Key(size))); // a new salt, new headers
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void FindTcp_NamesTheUser_AndNoOneUnderAnotherKeyOrSalt(string method)
    {
        var size = Sip023Reference.KeySize(method);
        var (ipsk, alice, bob, stranger) = (Key(size), Key(size), Key(size), Key(size));
        var salt = Key(size);
        (string, byte[])[] users = [("alice", alice), ("bob", bob)];

        var forBob = Sip023Reference.TcpIdentityHeaders([ipsk], bob, salt);
        Assert.Equal("bob", Sip023Reference.FindTcp(ipsk, salt, forBob, users)?.Name);
        Assert.Null(Sip023Reference.FindTcp(Key(size), salt, forBob, users)); // another iPSK
        Assert.Null(Sip023Reference.FindTcp(ipsk, Key(size), forBob, users)); // another salt
        Assert.Null(Sip023Reference.FindTcp(ipsk, salt, Sip023Reference.TcpIdentityHeaders([ipsk], stranger, salt), users));
        Assert.NotEqual(Sip023Reference.UserHash(alice), Sip023Reference.UserHash(bob));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReadTcpRequest_OverLoopback_FindsTheUserThroughTwoLayers_AndRefusesAStranger(string method)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var size = Sip023Reference.KeySize(method);
        var (ipsk0, ipsk1, alice, bob) = (Key(size), Key(size), Key(size), Key(size));
        (string, byte[])[] users = [("alice", alice), ("bob", bob)];
        var address = Sip022Reference.Address(new IPEndPoint(IPAddress.Loopback, 443));

        using (var client = new Sip022Reference(method, bob))
        {
            var plain = client.EncodeRequest(address, Sip022Reference.Now, 10, "hi"u8);
            var request = Sip023Reference.WithTcpIdentityHeaders(plain, [ipsk0, ipsk1], bob);
            Assert.Equal([.. plain[..size], .. Sip023Reference.TcpIdentityHeaders([ipsk0, ipsk1], bob, plain[..size]), .. plain[size..]], request); // salt | 2 headers | chunks
            var (user, server, read) = await SendAndReadAsync(request, method, [ipsk0, ipsk1], users, cancel.Token);
            using var _ = server;
            Assert.Equal("bob", user);
            Assert.Equal(address, read.Address);
            Assert.Equal("hi"u8.ToArray(), read.InitialPayload);
            Assert.Equal(client.SendSalt, server.ReceiveSalt);
        }

        using (var stranger = new Sip022Reference(method, Key(size)))
        {
            var request = Sip023Reference.WithTcpIdentityHeaders(stranger.EncodeRequest(address, Sip022Reference.Now, 10, "hi"u8), [ipsk0, ipsk1], Key(size));
            await Assert.ThrowsAsync<InvalidDataException>(() => SendAndReadAsync(request, method, [ipsk0, ipsk1], users, cancel.Token));
        }

        using (var skipsALayer = new Sip022Reference(method, alice))
        {
            var request = Sip023Reference.WithTcpIdentityHeaders(skipsALayer.EncodeRequest(address, Sip022Reference.Now, 10, "hi"u8), [ipsk1], alice);
            await Assert.ThrowsAsync<InvalidDataException>(() => SendAndReadAsync(request, method, [ipsk0, ipsk1], users, cancel.Token));
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void UdpIdentityHeaders_RecomputedStepByStep_FromTheSpecText(string method)
    {
        var size = Sip023Reference.KeySize(method);
        var (ipsk0, ipsk1, upsk) = (Key(size), Key(size), Key(size));
        var address = Sip022UdpReference.Address(new IPEndPoint(IPAddress.Loopback, 53));

        var packet = Sip023Reference.SealUdpClient(method, [ipsk0, ipsk1], upsk, 0x1122334455667788, 9, address, "query"u8, timestamp: 7);

        var header = Sip023Reference.DecryptBlock(ipsk0, packet.AsSpan(0, 16)); // under the first iPSK
        Assert.Equal(Convert.FromHexString("11223344556677880000000000000009"), header);
        var eih0 = Sip023Reference.DecryptBlock(ipsk0, packet.AsSpan(16, 16)); // the iPSK itself, no subkey
        var eih1 = Sip023Reference.DecryptBlock(ipsk1, packet.AsSpan(32, 16));
        Assert.Equal(Xor(Sip023Reference.Hash(ipsk1)[..16], header), eih0);
        Assert.Equal(Xor(Sip023Reference.Hash(upsk)[..16], header), eih1);

        // The rest is SIP022's body under the uPSK: its subkey from the session ID, its nonce the header's last 12 bytes.
        var body = new byte[packet.Length - 48 - 16];
        using var gcm = new AesGcm(new Sip022UdpReference(method, upsk).SessionSubkey(header.AsSpan(0, 8)), 16);
        gcm.Decrypt(header.AsSpan(4, 12), packet.AsSpan(48, body.Length), packet.AsSpan(48 + body.Length), body);
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, .. address, .. "query"u8], body); // type 0, timestamp 7, no padding

        // The XOR makes every packet's headers differ, even for one user and one session.
        var next = Sip023Reference.SealUdpClient(method, [ipsk0, ipsk1], upsk, 0x1122334455667788, 10, address, "query"u8, timestamp: 7);
        Assert.NotEqual(packet.AsSpan(16, 32).ToArray(), next.AsSpan(16, 32).ToArray());
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void OpenUdpClient_FindsTheUserThroughOneOrTwoLayers_AndDropsStrangersAndForeignLayers(string method)
    {
        var size = Sip023Reference.KeySize(method);
        var (ipsk0, ipsk1, alice, bob) = (Key(size), Key(size), Key(size), Key(size));
        (string, byte[])[] users = [("alice", alice), ("bob", bob)];
        var address = Sip022UdpReference.Address(new IPEndPoint(IPAddress.Loopback, 53));

        var direct = Sip023Reference.SealUdpClient(method, [ipsk1], alice, 5, 0, address, "one layer"u8);
        var opened = Sip023Reference.OpenUdpClient(method, direct, [ipsk1], users);
        Assert.NotNull(opened);
        Assert.Equal("alice", opened.Value.User);
        Assert.Equal((5UL, 0UL, "one layer"), (opened.Value.Message.SessionId, opened.Value.Message.PacketId, Encoding.ASCII.GetString(opened.Value.Message.Payload)));

        var relayed = Sip023Reference.SealUdpClient(method, [ipsk0, ipsk1], bob, 6, 3, address, "two layers"u8);
        Assert.Equal(direct.Length + 16 + 1, relayed.Length); // one more identity header, a one byte longer payload
        var processed = Sip023Reference.ProcessUdp(relayed, ipsk0, [("server", ipsk1)]);
        Assert.NotNull(processed);
        Assert.Equal(relayed.Length - 16, processed.Value.Packet.Length);
        Assert.Equal(Sip023Reference.SeparateHeader(6, 3), Sip023Reference.DecryptBlock(ipsk1, processed.Value.Packet.AsSpan(0, 16))); // re-encrypted for the next hop
        Assert.Equal("bob", Sip023Reference.OpenUdpClient(method, relayed, [ipsk0, ipsk1], users)?.User);

        Assert.Null(Sip023Reference.OpenUdpClient(method, relayed, [ipsk1], users)); // the relay's layer not taken off
        Assert.Null(Sip023Reference.OpenUdpClient(method, direct, [Key(size)], users)); // another server's iPSK
        Assert.Null(Sip023Reference.OpenUdpClient(method, Sip023Reference.SealUdpClient(method, [ipsk1], Key(size), 7, 0, address, "x"u8), [ipsk1], users));
        Assert.Null(Sip023Reference.OpenUdpClient(method, new Sip022UdpReference(method, ipsk1).SealClient(8, 0, address, "no identity header"u8), [ipsk1], users));
        var tampered = direct.ToArray();
        tampered[^1] ^= 1;
        Assert.Null(Sip023Reference.OpenUdpClient(method, tampered, [ipsk1], users));
    }

    private static byte[] Key(int size) => RandomNumberGenerator.GetBytes(size);

    private static byte[] Blake3Input(int length) => Enumerable.Range(0, length).Select(static i => (byte)(i % 251)).ToArray();

    private static byte[] Xor(byte[] a, byte[] b) => a.Zip(b, static (x, y) => (byte)(x ^ y)).ToArray();

    private static async Task<(string User, Sip022Reference Server, (byte Type, long Timestamp, byte[] Address, int PaddingLength, byte[] InitialPayload) Request)> SendAndReadAsync(
        byte[] request, string method, byte[][] layers, (string, byte[])[] users, CancellationToken cancellationToken)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!, cancellationToken);
        using var accepted = await listener.AcceptAsync(cancellationToken);
        await client.SendAsync(request, SocketFlags.None, cancellationToken);
        return await Sip023Reference.ReadTcpRequestAsync(accepted, method, layers, users, cancellationToken);
    }
}
