using System.Net;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Udp;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Core.Protocol.StreamCodecKit;

namespace Shadowsocks.Pipeline.Tests.Stages.Udp;

public sealed class Udp2022ServerSessionsTests
{
    private static readonly IPEndPoint s_first = new(IPAddress.Loopback, 40001);
    private static readonly IPEndPoint s_moved = new(IPAddress.Loopback, 40002);

    [Fact]
    public void ASessionPushedOutForRoom_CannotStartAgainUnderItsId_WithinTheRetention()
    {
        using var sessions = Sessions(capacity: 1, out var codec);
        using var a = codec.NewClientSession();
        using var b = codec.NewClientSession();
        var recordedA = Seal(codec, a);

        Assert.True(sessions.Keep(Open(sessions, Seal(codec, a)), s_first));
        Assert.True(sessions.Keep(Open(sessions, Seal(codec, b)), s_moved)); // the table holds one: a's session goes

        // a's recorded packet would open in a fresh session with an empty replay window: it is refused instead.
        Assert.False(sessions.Keep(Open(sessions, recordedA), s_first));
        Assert.Equal(1, sessions.ById.Count);
    }

    [Fact]
    public void ARefusedReplay_NeitherKeepsItsSessionAlive_NorPushesALiveOneOut()
    {
        using var sessions = Sessions(capacity: 2, out var codec);
        using var a = codec.NewClientSession();
        using var b = codec.NewClientSession();
        using var c = codec.NewClientSession();
        var recordedA = Seal(codec, a);
        Assert.True(sessions.Keep(Open(sessions, Copy(recordedA)), s_first));
        Assert.True(sessions.Keep(Open(sessions, Seal(codec, b)), s_moved));

        // Anyone may send a recorded packet again; refused, it must not count as a's use.
        Assert.Equal(Udp2022Status.Replayed, sessions.Codec.OpenAtServer(Copy(recordedA), sessions.Find, out _, out _, out _));
        Assert.True(sessions.Keep(Open(sessions, Seal(codec, c)), new IPEndPoint(IPAddress.Loopback, 40003)));

        Assert.False(sessions.ById.TryPeek(a.SessionId, out _)); // a, the least recently used, made room
        Assert.True(sessions.Keep(Open(sessions, Seal(codec, b)), s_moved)); // b was not pushed out (nor barred)
    }

    [Fact]
    public void ASessionHeardFromAnotherAddress_SendsItsRepliesThere()
    {
        using var sessions = Sessions(capacity: 16, out var codec);
        using var client = codec.NewClientSession();
        var session = Open(sessions, Seal(codec, client));
        Assert.True(sessions.Keep(session, s_first));
        Assert.Equal(s_first, session.LastHeardFrom);

        var again = Open(sessions, Seal(codec, client));
        Assert.Same(session, again);
        Assert.True(sessions.Keep(again, s_moved));

        Assert.Equal(s_moved, session.LastHeardFrom); // where its replies go (its NAT entry goes by the session)
    }

    /// <summary>
    /// A multi-user server (SIP023): two users' sessions from one address and port are each their own (the relay's NAT
    /// entries go by session, so each session's replies are sealed for its user), and one user's packets from the
    /// other's address change nothing of the other's session.
    /// </summary>
    [Fact]
    public void TwoUsersFromOneAddress_KeepSessionsOfTheirOwn()
    {
        Assert.True(CipherCatalog.TryGet("2022-blake3-aes-128-gcm", out var cipher));
        var identity = RandomNumberGenerator.GetBytes(16);
        var (aliceKey, bobKey) = (RandomNumberGenerator.GetBytes(16), RandomNumberGenerator.GetBytes(16));
        var options = RelayChain.Options(cipher.Name, "unused", s_first) with
        {
            MasterKey = identity,
            Users = [new UserKey("alice", aliceKey), new UserKey("bob", bobKey)],
        };
        using var sessions = new Udp2022ServerSessions(options, ProgramScheduler.Instance, TimeProvider.System);
        var alice = new Udp2022Codec(cipher, aliceKey, TimeProvider.System, identities: new IdentityChain(cipher, [identity], aliceKey));
        var bob = new Udp2022Codec(cipher, bobKey, TimeProvider.System, identities: new IdentityChain(cipher, [identity], bobKey));
        using var aliceClient = alice.NewClientSession();
        using var bobClient = bob.NewClientSession();

        var aliceSession = Open(sessions, Seal(alice, aliceClient));
        Assert.True(sessions.Keep(aliceSession, s_first));
        var bobSession = Open(sessions, Seal(bob, bobClient));
        Assert.True(sessions.Keep(bobSession, s_first));

        Assert.NotSame(aliceSession, bobSession);
        Assert.Equal(("alice", "bob"), (aliceSession.User?.Name, bobSession.User?.Name));
        Assert.True(sessions.Keep(Open(sessions, Seal(bob, bobClient)), s_moved));
        Assert.Equal((s_first, s_moved), (aliceSession.LastHeardFrom, bobSession.LastHeardFrom));
        Assert.Equal(2, sessions.ById.Count);
    }

    private static Udp2022ServerSessions Sessions(int capacity, out Udp2022Codec codec)
    {
        var method = "2022-blake3-aes-128-gcm";
        var options = RelayChain.Options(method, "unused", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            MasterKey = RandomNumberGenerator.GetBytes(16),
            UdpMaxAssociations = capacity,
        };
        var sessions = new Udp2022ServerSessions(options, ProgramScheduler.Instance, TimeProvider.System);
        codec = sessions.Codec;
        return sessions;
    }

    private static byte[] Seal(Udp2022Codec codec, Udp2022ClientSession session)
    {
        byte[] payload = [1, 127, 0, 0, 1, 0, 53, 42];
        var prefix = codec.PrefixSize(fromServer: false);
        var packet = new byte[prefix + payload.Length + Udp2022Codec.TagSize];
        payload.CopyTo(packet, prefix);
        codec.SealFromClient(session, packet, payload.Length);
        return packet;
    }

    private static byte[] Copy(byte[] packet) => (byte[])packet.Clone();

    private static Udp2022ServerSession Open(Udp2022ServerSessions sessions, byte[] packet)
    {
        Assert.Equal(Udp2022Status.Ok, sessions.Codec.OpenAtServer(packet, sessions.Find, out var session, out _, out _));
        return session!;
    }

    [Fact]
    public void ARemovedUsersSession_MadeFromAPacketOpenedBeforeTheReload_IsNotKeptAfterIt()
    {
        Assert.True(CipherCatalog.TryGet("2022-blake3-aes-256-gcm", out var cipher));
        var identity = RandomNumberGenerator.GetBytes(cipher.KeySize);
        var alice = new UserKey("udp-reload-alice", RandomNumberGenerator.GetBytes(cipher.KeySize));
        var bob = new UserKey("udp-reload-bob", RandomNumberGenerator.GetBytes(cipher.KeySize));
        var users = new ServerUsers(cipher, identity, [alice]);
        var options = new RelayOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Cipher = cipher,
            MasterKey = identity,
            Users = [alice],
        };
        using var sessions = new Udp2022ServerSessions(options, ProgramScheduler.Instance, TimeProvider.System, users: users);

        // Alice's packet, opened (FindUdp: alice) on the relay's loop...
        var client = new Udp2022Codec(cipher, alice.Key, TimeProvider.System, identities: new IdentityChain(cipher, [identity], alice.Key));
        var clientSession = client.NewClientSession();
        var packet = new byte[client.PrefixSize(fromServer: false) + 7 + 4 + Udp2022Codec.TagSize];
        var payload = Header(ShadowsocksAddress.FromIp(IPAddress.Loopback, 9)).Concat("ping"u8.ToArray()).ToArray();
        payload.CopyTo(packet.AsSpan(client.PrefixSize(fromServer: false)));
        var length = client.SealFromClient(clientSession, packet, payload.Length);
        Assert.Equal(Udp2022Status.Ok, sessions.Codec.OpenAtServer(packet.AsSpan(0, length), sessions.Find, out var session, out _, out _));

        // ...while the reload runs on another thread: alice off the list, her sessions ended (EndSessionsOf)...
        users.Replace([bob]);
        var ended = sessions.ById.RemoveWhere((_, s) => s.User is { Name: "udp-reload-alice" });

        // ...and then the loop keeps the session it made for her.
        var kept = sessions.Keep(session!, new IPEndPoint(IPAddress.Loopback, 1));

        // Not in the table when the reload swept it, it is refused as it is put in: nothing stays to seal replies for her.
        Assert.Equal(0, ended);
        Assert.False(kept);
        Assert.Equal(0, sessions.ById.Count);
    }
}
