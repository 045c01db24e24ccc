using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Protocol;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

using static Shadowsocks.Pipeline.Tests.Stages.Relay.DatagramsFrom;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// SIP023 over UDP on loopback, against <see cref="Sip023Reference"/> (written in the test from the spec): the
/// reference client with identity headers to our multi-user server, whose replies must be plain SIP022 packets under
/// the user's key; our local and tunnel with identity keys to the reference multi-user server, which must find the
/// user with the separate header under the iPSK; and our local and server together. Bad packets go unanswered without
/// disturbing the session.
/// </summary>
public sealed class Sip023UdpInteropTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a reply that should come may take.</summary>
    private static readonly TimeSpan s_reply = TimeSpan.FromSeconds(5);

    /// <summary>How long to listen for a reply that must not come.</summary>
    private static readonly TimeSpan s_quiet = DatagramsFrom.Quiet;

    public static TheoryData<string> Methods() => new(Sip023Reference.Methods);

    public static TheoryData<string, string> BadPackets()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in Sip023Reference.Methods)
        {
            foreach (var kind in new[]
            {
                "replayed packets",
                "unknown user",
                "unknown user, new session",
                "no identity header, SIP022 under the iPSK",
                "no identity header, SIP022 under alice's key",
                "alice's identity header, bob's body",
                "separate header under alice's key, not the iPSK",
                "identity header made for another packet ID",
                "identity header under another iPSK",
                "a byte of the body changed",
            })
            {
                data.Add(method, kind);
            }
        }

        return data;
    }

    // --- our server, the reference client ---

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReferenceClient_ToOurMultiUserServer_RepliesArePlainSip022UnderTheUserKey(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo4 = new UdpEchoDestination(IPAddress.Loopback);
        using var echo6 = new UdpEchoDestination(IPAddress.IPv6Loopback);
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys);
        using var client = Bind();
        var session = Sip022UdpReference.NewSessionId();
        var alice = new Sip022UdpReference(method, keys.Alice);

        var replies = new List<Sip022UdpMessage>();
        var sends = new (IPEndPoint Echo, int Size, int Padding)[] { (echo4.EndPoint, 1, 0), (echo4.EndPoint, 1200, 37), (echo6.EndPoint, 300, 0), (echo4.EndPoint, 64, 900) };
        for (var packetId = 0; packetId < sends.Length; packetId++)
        {
            var (target, size, padding) = sends[packetId];
            var payload = RandomNumberGenerator.GetBytes(size);
            var packet = Sip023Reference.SealUdpClient(method, [keys.Identity], keys.Alice, session, (ulong)packetId, Sip022UdpReference.Address(target), payload, paddingLength: padding);
            await client.SendToAsync(packet, SocketFlags.None, server.LocalEndPoint, cancel.Token);

            var datagram = await TryReceiveAsync(client, server.LocalEndPoint, s_reply);
            Assert.True(datagram is not null, $"packet {packetId}: no reply");
            Assert.Null(new Sip022UdpReference(method, keys.Identity).OpenServer(datagram)); // not under the server's iPSK
            Assert.Null(new Sip022UdpReference(method, keys.Bob).OpenServer(datagram)); // nor another user's key
            var reply = alice.OpenServer(datagram);
            Assert.True(reply is not null, $"packet {packetId}: the reply ({datagram.Length} bytes) did not open under alice's key as a plain SIP022 packet");
            Assert.Equal(Sip022UdpReference.ServerType, reply.Type);
            Assert.Equal(session, reply.ClientSessionId);
            Assert.InRange(reply.Age, -3, 3);
            Assert.Equal(Sip022UdpReference.Address(target), reply.Address);
            Assert.Equal(payload, reply.Payload);
            // separate header | type, timestamp, client session ID, padding length | padding | address | payload | tag: no identity header.
            Assert.Equal(16 + 1 + 8 + 8 + 2 + reply.PaddingLength + reply.Address.Length + payload.Length + 16, datagram.Length);
            replies.Add(reply);
        }

        Assert.NotEqual(session, replies[0].SessionId);
        Assert.All(replies, r => Assert.Equal(replies[0].SessionId, r.SessionId));
        var packetIds = replies.Select(static r => r.PacketId).ToArray();
        Assert.True(packetIds.Zip(packetIds.Skip(1)).All(static p => p.First < p.Second), $"server packet IDs not increasing: {string.Join(", ", packetIds)}");
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReferenceClient_TwoUsersFromOnePort_EachAnsweredUnderItsOwnKey(string method)
    {
        // The server's NAT entries go by client session, not by address: two users behind one address and port (one
        // client program for both, or a NAT that gave a port again) each get their own replies, under their own key.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys);
        using var client = Bind();
        var target = Sip022UdpReference.Address(echo.EndPoint);
        var sessions = new[] { ("alice", keys.Alice, keys.Bob, Sip022UdpReference.NewSessionId()), ("bob", keys.Bob, keys.Alice, Sip022UdpReference.NewSessionId()) };

        for (var round = 0; round < 2; round++)
        {
            foreach (var (name, key, other, session) in sessions)
            {
                var payload = Encoding.ASCII.GetBytes($"{name} {round}");
                await client.SendToAsync(Sip023Reference.SealUdpClient(method, [keys.Identity], key, session, (ulong)round, target, payload), SocketFlags.None, server.LocalEndPoint, cancel.Token);
                var datagram = await TryReceiveAsync(client, server.LocalEndPoint, s_reply) ?? [];
                Assert.Null(new Sip022UdpReference(method, other).OpenServer(datagram));
                var reply = new Sip022UdpReference(method, key).OpenServer(datagram);
                Assert.True(reply is not null, $"{name}, round {round}: no reply that opens under {name}'s key");
                Assert.Equal(session, reply.ClientSessionId);
                Assert.Equal(payload, reply.Payload);
            }
        }

        Assert.Equal(4, echo.Received);
    }

    [Theory]
    [MemberData(nameof(BadPackets))]
    public async Task ReferenceClient_BadPackets_DroppedUnanswered_SessionUndisturbed(string method, string kind)
    {
        // Three good packets of alice's session (IDs 0, 1, 2, each answered), then the bad ones, then a good one (ID
        // 100): the only reply must be the last one's, and only the four good packets reached the destination.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys);
        using var client = Bind();
        var session = Sip022UdpReference.NewSessionId();
        var target = Sip022UdpReference.Address(echo.EndPoint);
        var alice = new Sip022UdpReference(method, keys.Alice);
        string Describe(byte[] datagram) => alice.OpenServer(datagram) is { } reply ? Encoding.ASCII.GetString(reply.Payload) : $"<{datagram.Length} bytes that do not open under alice's key>";
        byte[] Seal(ulong packetId, string payload, byte[]? userKey = null, byte[]? identityKey = null, ulong? sessionId = null) =>
            Sip023Reference.SealUdpClient(method, [identityKey ?? keys.Identity], userKey ?? keys.Alice, sessionId ?? session, packetId, target, Encoding.ASCII.GetBytes(payload));

        var sent = new byte[3][];
        for (var packetId = 0; packetId < sent.Length; packetId++)
        {
            sent[packetId] = Seal((ulong)packetId, $"p{packetId}");
            await client.SendToAsync(sent[packetId], SocketFlags.None, server.LocalEndPoint, cancel.Token);
            Assert.Equal([$"p{packetId}"], (await CollectAsync(client, server.LocalEndPoint, s_reply, once: true)).Select(Describe));
        }

        var stranger = Keys.NewKey(method);
        byte[][] bad = kind switch
        {
            "replayed packets" => [sent[0], sent[2], sent[1]],
            "unknown user" => [Seal(3, "stranger", userKey: stranger)],
            "unknown user, new session" => [Seal(0, "stranger", userKey: stranger, sessionId: Sip022UdpReference.NewSessionId())],
            "no identity header, SIP022 under the iPSK" =>
            [
                new Sip022UdpReference(method, keys.Identity).SealClient(session, 3, target, "plain under the iPSK"u8),
                new Sip022UdpReference(method, keys.Identity).SealClient(Sip022UdpReference.NewSessionId(), 0, target, "plain under the iPSK, new session"u8),
            ],
            "no identity header, SIP022 under alice's key" => [alice.SealClient(session, 3, target, "plain under alice's key"u8)],
            "alice's identity header, bob's body" => [WithIdentityHeader(Seal(3, "bob's body", userKey: keys.Bob), Sip023Reference.UdpIdentityHeaders([keys.Identity], keys.Alice, Sip023Reference.SeparateHeader(session, 3)))],
            "separate header under alice's key, not the iPSK" => [WithSeparateHeader(Seal(3, "header under alice's key"), Sip023Reference.EncryptBlock(keys.Alice, Sip023Reference.SeparateHeader(session, 3)))],
            "identity header made for another packet ID" => [WithIdentityHeader(Seal(3, "another packet's header"), Sip023Reference.UdpIdentityHeaders([keys.Identity], keys.Alice, Sip023Reference.SeparateHeader(session, 4)))],
            "identity header under another iPSK" => [Seal(3, "another iPSK", identityKey: stranger)],
            "a byte of the body changed" => [Flip(Seal(3, "changed"), 40)],
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
        foreach (var packet in bad)
        {
            await client.SendToAsync(packet, SocketFlags.None, server.LocalEndPoint, cancel.Token);
        }

        await client.SendToAsync(Seal(100, "good"), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        Assert.Equal(["good"], (await CollectAsync(client, server.LocalEndPoint, s_reply, once: false)).Select(Describe));
        Assert.Equal(4, echo.Received);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReferenceClient_AnotherUserSendsWithAlicesSessionId_AlicesSessionKeepsItsKeyAddressAndWindow(string method)
    {
        // Beyond the spec's letter: every user of a server knows its iPSK, so bob can read alice's session ID from her
        // separate header and send, under his own key, packets that carry it. They must not take over alice's session:
        // her replies stay at her address and under her key, and her packet IDs stay fresh.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys);
        using var aliceSocket = Bind();
        using var bobSocket = Bind();
        var session = Sip022UdpReference.NewSessionId();
        var target = Sip022UdpReference.Address(echo.EndPoint);
        var alice = new Sip022UdpReference(method, keys.Alice);

        await aliceSocket.SendToAsync(Sip023Reference.SealUdpClient(method, [keys.Identity], keys.Alice, session, 0, target, "alice 0"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        Assert.Equal("alice 0"u8.ToArray(), alice.OpenServer(await TryReceiveAsync(aliceSocket, server.LocalEndPoint, s_reply) ?? [])?.Payload);

        await bobSocket.SendToAsync(Sip023Reference.SealUdpClient(method, [keys.Identity], keys.Bob, session, 1_000_000, target, "bob in alice's session"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        var toBob = await CollectAsync(bobSocket, server.LocalEndPoint, s_quiet, once: false);
        Assert.All(toBob, d => Assert.Null(alice.OpenServer(d))); // whatever bob gets, nothing under alice's key

        await aliceSocket.SendToAsync(Sip023Reference.SealUdpClient(method, [keys.Identity], keys.Alice, session, 1, target, "alice 1"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        var reply = alice.OpenServer(await TryReceiveAsync(aliceSocket, server.LocalEndPoint, s_reply) ?? []);
        Assert.True(reply is not null, "alice's packet 1, after bob's packet with her session ID, got no reply at her address under her key");
        Assert.Equal("alice 1"u8.ToArray(), reply.Payload);
        Assert.Equal(session, reply.ClientSessionId);
    }

    // --- our local and tunnel, the reference multi-user server ---

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_IdentityKey_ToReferenceServer_FindsTheUser_Socks5AssociateRoundTrips(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var keys = Keys.New(method);
        using var referenceServer = Bind();
        var serverEndPoint = (IPEndPoint)referenceServer.LocalEndPoint!;
        var (udp, tcp) = UdpRelayChain.StartLocal(ClientOptions(method, [keys.Identity], keys.Bob, serverEndPoint), serverEndPoint);
        await using var _ = udp;
        await using var __ = tcp;
        using var client = await Socks5UdpTestClient.AssociateAsync(tcp.LocalEndPoint, cancel.Token);
        var serverSession = Sip022UdpReference.NewSessionId();
        var destination = new IPEndPoint(IPAddress.Loopback, 5353);
        var bob = new Sip022UdpReference(method, keys.Bob);

        ulong? clientSession = null;
        for (var round = 0; round < 3; round++)
        {
            var query = RandomNumberGenerator.GetBytes(round == 1 ? 1300 : 100);
            await client.SendAsync("127.0.0.1", destination.Port, query, cancel.Token);
            var (datagram, user, request, from) = await ReceiveRequestAsync(referenceServer, method, [keys.Identity], keys.Users);
            Assert.Equal("bob", user);
            Assert.Equal(Sip023Reference.SeparateHeader(request.SessionId, request.PacketId), Sip023Reference.DecryptBlock(keys.Identity, datagram.AsSpan(0, 16)));
            Assert.NotEqual(Sip023Reference.SeparateHeader(request.SessionId, request.PacketId), Sip023Reference.DecryptBlock(keys.Bob, datagram.AsSpan(0, 16)));
            Assert.Null(bob.OpenClient(datagram)); // not a plain SIP022 packet under the user's key
            Assert.Equal(Sip022UdpReference.ClientType, request.Type);
            Assert.InRange(request.Age, -3, 3);
            Assert.Equal(Sip022UdpReference.Address(destination), request.Address);
            Assert.Equal((ulong)round, request.PacketId);
            clientSession ??= request.SessionId;
            Assert.Equal(clientSession, request.SessionId);
            Assert.Equal(query, request.Payload);

            var answer = RandomNumberGenerator.GetBytes(round == 2 ? 1200 : 50);
            await referenceServer.SendToAsync(
                bob.SealServer(serverSession, (ulong)round, request.SessionId, Sip022UdpReference.Address(destination), answer, paddingLength: round * 10), SocketFlags.None, from, cancel.Token);
            Assert.Equal(answer, await client.ReceiveAsync(cancel.Token));
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_TwoIdentityKeys_ReferenceRelayReencryptsTheHeader_ServerFindsTheUser(string method)
    {
        // client (iPSK0:iPSK1:uPSK) -> relay [iPSK0] -> server [iPSK1, users]: the reference plays the relay (drops the
        // first identity header, re-encrypts the separate header under iPSK1) and the server.
        using var cancel = new CancellationTokenSource(s_timeout);
        var keys = Keys.New(method);
        var relayKey = Keys.NewKey(method);
        using var referenceServer = Bind();
        var serverEndPoint = (IPEndPoint)referenceServer.LocalEndPoint!;
        var (udp, tcp) = UdpRelayChain.StartLocal(ClientOptions(method, [relayKey, keys.Identity], keys.Alice, serverEndPoint), serverEndPoint);
        await using var _ = udp;
        await using var __ = tcp;
        using var client = await Socks5UdpTestClient.AssociateAsync(tcp.LocalEndPoint, cancel.Token);
        var destination = new IPEndPoint(IPAddress.Loopback, 5353);

        var query = RandomNumberGenerator.GetBytes(200);
        await client.SendAsync("127.0.0.1", destination.Port, query, cancel.Token);
        var (datagram, user, request, from) = await ReceiveRequestAsync(referenceServer, method, [relayKey, keys.Identity], keys.Users);
        Assert.Equal("alice", user);
        Assert.Equal(query, request.Payload);
        Assert.Equal(Sip023Reference.SeparateHeader(request.SessionId, request.PacketId), Sip023Reference.DecryptBlock(relayKey, datagram.AsSpan(0, 16))); // the first iPSK
        var relayed = Sip023Reference.ProcessUdp(datagram, relayKey, [("server", keys.Identity)]);
        Assert.NotNull(relayed);
        Assert.Equal("alice", Sip023Reference.OpenUdpClient(method, relayed.Value.Packet, [keys.Identity], keys.Users)?.User);

        var answer = "relayed answer"u8.ToArray();
        await referenceServer.SendToAsync(
            new Sip022UdpReference(method, keys.Alice).SealServer(Sip022UdpReference.NewSessionId(), 0, request.SessionId, Sip022UdpReference.Address(destination), answer),
            SocketFlags.None, from, cancel.Token);
        Assert.Equal(answer, await client.ReceiveAsync(cancel.Token));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurTunnel_IdentityKey_ToReferenceServer_FindsTheUser(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var keys = Keys.New(method);
        using var referenceServer = Bind();
        var serverEndPoint = (IPEndPoint)referenceServer.LocalEndPoint!;
        var destination = new IPEndPoint(IPAddress.Loopback, 5353); // never contacted: the reference server answers for it
        var options = ClientOptions(method, [keys.Identity], keys.Alice, serverEndPoint) with { TunnelDestination = ShadowsocksAddress.FromEndPoint(destination) };
        await using var tunnel = new TunnelUdpRelay(options, serverEndPoint, ProgramScheduler.Instance);
        tunnel.Start(new IPEndPoint(IPAddress.Loopback, 0));
        using var app = Bind();

        await app.SendToAsync("query"u8.ToArray(), SocketFlags.None, tunnel.LocalEndPoint, cancel.Token);
        var (_, user, request, from) = await ReceiveRequestAsync(referenceServer, method, [keys.Identity], keys.Users);
        Assert.Equal("alice", user);
        Assert.Equal(Sip022UdpReference.Address(destination), request.Address);
        Assert.Equal("query"u8.ToArray(), request.Payload);

        await referenceServer.SendToAsync(
            new Sip022UdpReference(method, keys.Alice).SealServer(Sip022UdpReference.NewSessionId(), 0, request.SessionId, Sip022UdpReference.Address(destination), "answer"u8),
            SocketFlags.None, from, cancel.Token);
        Assert.Equal("answer"u8.ToArray(), await TryReceiveAsync(app, tunnel.LocalEndPoint, s_reply));
    }

    // --- our local and our server ---

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocals_OurMultiUserServer_TwoUsersRoundTrip_StrangerGetsNothing(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys);
        var locals = new List<IAsyncDisposable>();
        try
        {
            async Task<Socks5UdpTestClient> AssociateAsync(byte[] userKey)
            {
                var (udp, tcp) = UdpRelayChain.StartLocal(ClientOptions(method, [keys.Identity], userKey, server.LocalEndPoint), server.LocalEndPoint);
                locals.Add(tcp);
                locals.Add(udp);
                return await Socks5UdpTestClient.AssociateAsync(tcp.LocalEndPoint, cancel.Token);
            }

            using var alice = await AssociateAsync(keys.Alice);
            using var bob = await AssociateAsync(keys.Bob);
            using var stranger = await AssociateAsync(Keys.NewKey(method));
            for (var round = 0; round < 3; round++)
            {
                foreach (var (name, client) in new[] { ("alice", alice), ("bob", bob) })
                {
                    var payload = Encoding.ASCII.GetBytes($"{name} {round} {new string('x', round * 500)}");
                    await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
                    Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
                }
            }

            await stranger.SendAsync("127.0.0.1", echo.EndPoint.Port, "hello?"u8, cancel.Token);
            Assert.Null(await stranger.TryReceiveAsync(s_quiet));
            Assert.Equal(6, echo.Received);
        }
        finally
        {
            foreach (var local in locals)
            {
                await local.DisposeAsync();
            }
        }
    }

    // --- helpers ---

    /// <summary>A server's identity key and its two users' keys, all of the method's size.</summary>
    private sealed record Keys(byte[] Identity, byte[] Alice, byte[] Bob)
    {
        public (string Name, byte[] Key)[] Users => [("alice", Alice), ("bob", Bob)];

        public static Keys New(string method) => new(NewKey(method), NewKey(method), NewKey(method));

        public static byte[] NewKey(string method) => RandomNumberGenerator.GetBytes(Sip023Reference.KeySize(method));
    }

    /// <summary>Our UDP server: its password the iPSK, users alice and bob.</summary>
    private static ServerUdpRelay StartServer(string method, Keys keys) =>
        UdpRelayChain.StartServer(
            RelayChain.Options(method, "unused: SIP022 takes the PSK", new IPEndPoint(IPAddress.Loopback, 0)) with
            {
                MasterKey = keys.Identity,
                Users = [new UserKey("alice", keys.Alice), new UserKey("bob", keys.Bob)],
            });

    /// <summary>Our local's or tunnel's options for the password <c>iPSK:...:uPSK</c>.</summary>
    private static RelayOptions ClientOptions(string method, byte[][] identityKeys, byte[] userKey, IPEndPoint server) =>
        RelayChain.Options(method, "unused: SIP022 takes the PSK", new IPEndPoint(IPAddress.Loopback, 0), server) with
        {
            MasterKey = userKey,
            IdentityKeys = identityKeys,
        };

    /// <summary>A one-identity-header packet with its identity header replaced.</summary>
    private static byte[] WithIdentityHeader(byte[] packet, byte[] identityHeader) => [.. packet.AsSpan(0, 16), .. identityHeader, .. packet.AsSpan(32)];

    /// <summary>A packet with its encrypted separate header replaced.</summary>
    private static byte[] WithSeparateHeader(byte[] packet, byte[] separateHeader) => [.. separateHeader, .. packet.AsSpan(16)];

    private static byte[] Flip(byte[] bytes, int position)
    {
        var flipped = bytes.ToArray();
        flipped[position] ^= 0x01;
        return flipped;
    }

    private static Socket Bind()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    /// <summary>The next datagram that the reference multi-user server opens (through <paramref name="layers"/>): the raw datagram, the user, the message, and where it came from.</summary>
    private static async Task<(byte[] Datagram, string User, Sip022UdpMessage Request, IPEndPoint From)> ReceiveRequestAsync(
        Socket server, string method, byte[][] layers, (string Name, byte[] Key)[] users)
    {
        var unopened = 0;
        while (await ReceiveFromAsync(server, s_reply) is { } datagram)
        {
            if (Sip023Reference.OpenUdpClient(method, datagram.Data, layers, users) is { } opened)
            {
                return (datagram.Data, opened.User, opened.Message, datagram.From);
            }

            unopened++; // a stray from another test, or our packet not opening: the latter fails by the timeout
        }

        Assert.Fail($"no packet that names a user and opens reached the reference server ({unopened} did not)");
        throw new UnreachableException();
    }
}
