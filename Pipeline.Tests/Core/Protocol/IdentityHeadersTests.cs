using System.Net;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using static Shadowsocks.Pipeline.Tests.Core.Protocol.StreamCodecKit;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// SIP023 identity headers in our own codecs, both ends: a client's chain (<see cref="IdentityChain"/>) against a
/// multi-user server (<see cref="ServerUsers"/>), TCP and UDP. Against a reference written separately from the spec:
/// Sip023InteropTests.
/// </summary>
public sealed class IdentityHeadersTests
{
    private static readonly byte[] s_header = Header(ShadowsocksAddress.FromIp(IPAddress.Loopback, 8080));

    public static TheoryData<string> Methods() => ["2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm"];

    [Theory]
    [MemberData(nameof(Methods))]
    public void Tcp_EachUsersRequest_IsReadUnderTheirKey_AndAnsweredUnderIt(string method)
    {
        var (cipher, identity, users) = Setup(method, 3);
        var table = new ServerUsers(cipher, identity, users);
        var random = new Random(7);
        foreach (var user in users)
        {
            var chain = new IdentityChain(cipher, [identity], user.Key);
            using var request = ShadowsocksStreamCodec.CreateEncryptor(cipher, user.Key, time: TimeProvider.System, identities: chain);
            var data = RandomBytes(random, 50_000);
            var wire = Encrypt(request, [.. s_header, .. data]);
            Assert.Equal(16, chain.Size);

            using var serverIn = (Aead2022StreamDecryptor)ShadowsocksStreamCodec.CreateDecryptor(cipher, identity, time: TimeProvider.System, users: table);
            var (status, plain) = DecryptInPieces(serverIn, wire, random);
            Assert.Equal(DecryptStatus.Ok, status);
            Assert.Equal([.. s_header, .. data], plain);
            Assert.Equal(user.Name, serverIn.User?.Name);

            using var serverOut = ShadowsocksStreamCodec.CreateEncryptor(cipher, identity, answering: serverIn, time: TimeProvider.System);
            var answer = RandomBytes(random, 30_000);
            var answerWire = Encrypt(serverOut, answer);
            using var clientIn = ShadowsocksStreamCodec.CreateDecryptor(cipher, user.Key, request: request, time: TimeProvider.System);
            var (answerStatus, answerPlain) = DecryptInPieces(clientIn, answerWire, random);
            Assert.Equal(DecryptStatus.Ok, answerStatus);
            Assert.Equal(answer, answerPlain);

            // Sealed under the user's key, not the server's identity key.
            using var underIdentity = ShadowsocksStreamCodec.CreateDecryptor(cipher, identity, request: request, time: TimeProvider.System);
            Assert.Equal(DecryptStatus.AuthenticationFailed, underIdentity.Decrypt(answerWire, new byte[answerWire.Length], out _));
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Tcp_UnknownUser_NoIdentityHeader_OrAnotherUsersBody_FailAsABadTag(string method)
    {
        var (cipher, identity, users) = Setup(method, 2);
        var table = new ServerUsers(cipher, identity, users);
        var stranger = RandomNumberGenerator.GetBytes(cipher.KeySize);
        var cases = new List<byte[]>
        {
            Encrypt(ShadowsocksStreamCodec.CreateEncryptor(cipher, stranger, identities: new IdentityChain(cipher, [identity], stranger)), s_header),
            Encrypt(ShadowsocksStreamCodec.CreateEncryptor(cipher, identity), s_header), // plain SIP022 under the identity key
            Encrypt(ShadowsocksStreamCodec.CreateEncryptor(cipher, users[0].Key), s_header), // plain SIP022 under a user's key
            Encrypt(ShadowsocksStreamCodec.CreateEncryptor(cipher, users[1].Key, identities: new IdentityChain(cipher, [stranger], users[1].Key)), s_header),
        };

        // Names user 0 in its identity header, but the rest is sealed under user 1's key.
        var named0 = Encrypt(ShadowsocksStreamCodec.CreateEncryptor(cipher, users[0].Key, identities: new IdentityChain(cipher, [identity], users[0].Key)), s_header);
        var body1 = Encrypt(ShadowsocksStreamCodec.CreateEncryptor(cipher, users[1].Key, identities: new IdentityChain(cipher, [identity], users[1].Key)), s_header);
        cases.Add([.. named0.AsSpan(0, cipher.SaltSize + 16), .. body1.AsSpan(cipher.SaltSize + 16)]);

        foreach (var wire in cases)
        {
            using var serverIn = (Aead2022StreamDecryptor)ShadowsocksStreamCodec.CreateDecryptor(cipher, identity, users: table);
            var output = new byte[wire.Length];
            Assert.Equal(DecryptStatus.AuthenticationFailed, serverIn.Decrypt(wire, output, out var written));
            Assert.Equal(0, written);
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Tcp_OneByteFeeds_FindTheUserOnceTheIdentityHeaderIsWhole(string method)
    {
        var (cipher, identity, users) = Setup(method, 1);
        var chain = new IdentityChain(cipher, [identity], users[0].Key);
        var wire = Encrypt(ShadowsocksStreamCodec.CreateEncryptor(cipher, users[0].Key, identities: chain), [.. s_header, 1, 2, 3]);
        using var serverIn = (Aead2022StreamDecryptor)ShadowsocksStreamCodec.CreateDecryptor(cipher, identity, users: new ServerUsers(cipher, identity, users));
        var plain = new List<byte>();
        var output = new byte[wire.Length];
        for (var i = 0; i < wire.Length; i++)
        {
            Assert.Equal(DecryptStatus.Ok, serverIn.Decrypt(wire.AsSpan(i, 1), output, out var written));
            plain.AddRange(output.AsSpan(0, written).ToArray());
            Assert.Equal(i >= cipher.SaltSize + 16 - 1, serverIn.User is not null);
            Assert.Equal(i >= cipher.SaltSize + 16 - 1 ? cipher.SaltSize : 0, serverIn.Salt.Length);
        }

        Assert.Equal([.. s_header, 1, 2, 3], plain);
    }

    [Fact]
    public void TheChaChaMethod_HasNoIdentityHeaders()
    {
        Assert.True(CipherCatalog.TryGet("2022-blake3-chacha20-poly1305", out var chacha));
        var key = RandomNumberGenerator.GetBytes(32);
        Assert.False(chacha.HasIdentityHeaders);
        Assert.Throws<ArgumentException>(() => new IdentityChain(chacha, [key], key));
        Assert.Throws<ArgumentException>(() => new ServerUsers(chacha, key, [new UserKey("a", key)]));
        Assert.Throws<ArgumentException>(() => new Udp2022Codec(chacha, key, TimeProvider.System, identities: null, users: new ServerUsers(CipherOf("2022-blake3-aes-256-gcm"), key, [new UserKey("a", key)])));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Users_WithOneKey_AreRefused(string method)
    {
        var (cipher, identity, users) = Setup(method, 1);
        var error = Assert.Throws<ArgumentException>(() => new ServerUsers(cipher, identity, [users[0], new UserKey("twin", users[0].Key)]));
        Assert.Contains("twin", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Udp_ClientWithAChain_ToAMultiUserServer_AndBack(string method)
    {
        var (cipher, identity, users) = Setup(method, 2);
        var table = new ServerUsers(cipher, identity, users);
        var server = new Udp2022Codec(cipher, identity, TimeProvider.System, users: table);
        var sessions = new Dictionary<ulong, Udp2022ServerSession>();
        foreach (var user in users)
        {
            var client = new Udp2022Codec(cipher, user.Key, TimeProvider.System, identities: new IdentityChain(cipher, [identity], user.Key));
            using var session = client.NewClientSession();
            for (var i = 0; i < 3; i++)
            {
                var payload = RandomNumberGenerator.GetBytes(100 + i);
                var packet = new byte[2048];
                var prefix = client.PrefixSize(fromServer: false);
                Assert.Equal(16 + 16 + 11, prefix); // separate header, identity header, type, time, padding length
                payload.CopyTo(packet, prefix);
                var length = client.SealFromClient(session, packet, payload.Length);

                var status = server.OpenAtServer(packet.AsSpan(0, length), id => sessions.GetValueOrDefault(id), out var serverSession, out var offset, out var opened);
                Assert.Equal(Udp2022Status.Ok, status);
                Assert.Equal(payload, packet.AsSpan(offset, opened).ToArray());
                Assert.Equal(user.Name, serverSession!.User?.Name);
                sessions[session.SessionId] = serverSession;

                var reply = new byte[2048];
                var replyPayload = RandomNumberGenerator.GetBytes(50);
                replyPayload.CopyTo(reply, server.PrefixSize(fromServer: true));
                var replyLength = server.SealFromServer(serverSession, reply, replyPayload.Length);
                Assert.Equal(Udp2022Status.Ok, client.OpenAtClient(session, reply.AsSpan(0, replyLength), out var replyOffset, out var replyOpened));
                Assert.Equal(replyPayload, reply.AsSpan(replyOffset, replyOpened).ToArray());
            }
        }

        foreach (var s in sessions.Values)
        {
            s.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Udp_UnknownUser_OrAnotherUsersSessionId_IsDropped(string method)
    {
        var (cipher, identity, users) = Setup(method, 2);
        var server = new Udp2022Codec(cipher, identity, TimeProvider.System, users: new ServerUsers(cipher, identity, users));
        var stranger = RandomNumberGenerator.GetBytes(cipher.KeySize);
        var strangerClient = new Udp2022Codec(cipher, stranger, TimeProvider.System, identities: new IdentityChain(cipher, [identity], stranger));
        var plainClient = new Udp2022Codec(cipher, users[0].Key, TimeProvider.System);
        foreach (var client in new[] { strangerClient, plainClient })
        {
            using var session = client.NewClientSession();
            var packet = new byte[512];
            var length = client.SealFromClient(session, packet, 100);
            Assert.Equal(Udp2022Status.AuthenticationFailed, server.OpenAtServer(packet.AsSpan(0, length), _ => null, out var made, out _, out _));
            Assert.Null(made);
        }

        // User 1 reusing user 0's session ID: the session is user 0's, so user 1's packet is not taken in it.
        var alice = new Udp2022Codec(cipher, users[0].Key, TimeProvider.System, identities: new IdentityChain(cipher, [identity], users[0].Key));
        using var aliceSession = alice.NewClientSession();
        var first = new byte[512];
        var firstLength = alice.SealFromClient(aliceSession, first, 10);
        Assert.Equal(Udp2022Status.Ok, server.OpenAtServer(first.AsSpan(0, firstLength), _ => null, out var serverSession, out _, out _));
        using var held = serverSession!;
        var forged = new byte[512];
        var bobKeyedClient = new Udp2022Codec(cipher, users[1].Key, TimeProvider.System, identities: new IdentityChain(cipher, [identity], users[1].Key));
        using var bobSession = bobKeyedClient.NewClientSession();
        var forgedLength = bobKeyedClient.SealFromClient(bobSession, forged, 10);
        Assert.Equal(Udp2022Status.Ok, server.OpenAtServer(forged.AsSpan(0, forgedLength), _ => null, out var bobServerSession, out _, out _));
        bobServerSession!.Dispose();
        Assert.Equal(Udp2022Status.AuthenticationFailed, server.OpenAtServer(forged.AsSpan(0, forgedLength), _ => held, out _, out _, out _));
    }

    private static (CipherInfo Cipher, byte[] Identity, UserKey[] Users) Setup(string method, int users)
    {
        var cipher = CipherOf(method);
        return (cipher, RandomNumberGenerator.GetBytes(cipher.KeySize),
            [.. Enumerable.Range(0, users).Select(i => new UserKey($"user{i}", RandomNumberGenerator.GetBytes(cipher.KeySize)))]);
    }

    private static CipherInfo CipherOf(string method)
    {
        Assert.True(CipherCatalog.TryGet(method, out var cipher));
        return cipher;
    }
}
