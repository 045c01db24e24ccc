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
/// SIP022 UDP against an independent peer: <see cref="Sip022UdpReference"/>, written in the test from the spec, as
/// the client of our server and as the server of our tunnel and our local, on loopback. Good packets must round-trip
/// byte-exact with the spec's headers; replayed, stale, mistyped, foreign-key and foreign-session packets must go
/// unanswered without disturbing the session.
/// </summary>
public sealed class Sip022UdpInteropTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a reply that should come may take.</summary>
    private static readonly TimeSpan s_reply = TimeSpan.FromSeconds(5);

    /// <summary>How long to listen for a reply that must not come.</summary>
    private static readonly TimeSpan s_quiet = DatagramsFrom.Quiet;

    public static TheoryData<string> Methods() => new(Sip022UdpReference.Methods);

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReferenceClient_ToOurServer_RepliesDecodeAsServerPacketsOfOneSession(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo4 = new UdpEchoDestination(IPAddress.Loopback);
        using var echo6 = new UdpEchoDestination(IPAddress.IPv6Loopback);
        var (reference, options) = Peer(method);
        await using var server = UdpRelayChain.StartServer(options);
        using var client = Bind();
        var session = Sip022UdpReference.NewSessionId();

        var replies = new List<Sip022UdpMessage>();
        var sends = new (IPEndPoint Echo, int Size, int Padding)[] { (echo4.EndPoint, 1, 0), (echo4.EndPoint, 1200, 37), (echo6.EndPoint, 300, 0), (echo4.EndPoint, 64, 900) };
        for (var packetId = 0; packetId < sends.Length; packetId++)
        {
            var (target, size, padding) = sends[packetId];
            var payload = RandomNumberGenerator.GetBytes(size);
            var packet = reference.SealClient(session, (ulong)packetId, Sip022UdpReference.Address(target), payload, paddingLength: padding);
            await client.SendToAsync(packet, SocketFlags.None, server.LocalEndPoint, cancel.Token);

            var datagram = await TryReceiveAsync(client, server.LocalEndPoint, s_reply);
            Assert.True(datagram is not null, $"packet {packetId}: no reply");
            var reply = reference.OpenServer(datagram);
            Assert.True(reply is not null, $"packet {packetId}: the reply ({datagram.Length} bytes) did not authenticate or parse");
            Assert.Equal(Sip022UdpReference.ServerType, reply.Type);
            Assert.Equal(session, reply.ClientSessionId);
            Assert.InRange(reply.Age, -3, 3);
            Assert.Equal(Sip022UdpReference.Address(target), reply.Address); // the reply's source: the echo, ATYP 1 or 4
            Assert.Equal(payload, reply.Payload);
            replies.Add(reply);
        }

        var serverSession = replies[0].SessionId;
        Assert.NotEqual(session, serverSession);
        Assert.All(replies, r => Assert.Equal(serverSession, r.SessionId));
        var packetIds = replies.Select(static r => r.PacketId).ToArray();
        Assert.True(packetIds.Zip(packetIds.Skip(1)).All(static p => p.First < p.Second), $"server packet IDs not increasing: {string.Join(", ", packetIds)}");
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReferenceClient_TwoSessionsFromOnePort_EachIsItsOwnSession(string method)
    {
        // § 3.2.4: the server keys sessions by client session ID, so both sessions' packet 0 is fresh.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var (reference, options) = Peer(method);
        await using var server = UdpRelayChain.StartServer(options);
        using var client = Bind();
        var target = Sip022UdpReference.Address(echo.EndPoint);

        foreach (var session in new[] { Sip022UdpReference.NewSessionId(), Sip022UdpReference.NewSessionId() })
        {
            var payload = RandomNumberGenerator.GetBytes(100);
            await client.SendToAsync(reference.SealClient(session, 0, target, payload), SocketFlags.None, server.LocalEndPoint, cancel.Token);
            var reply = reference.OpenServer(await TryReceiveAsync(client, server.LocalEndPoint, s_reply) ?? []);
            Assert.True(reply is not null, "no reply that opens");
            Assert.Equal(session, reply.ClientSessionId);
            Assert.NotEqual(session, reply.SessionId);
            Assert.Equal(payload, reply.Payload);
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public Task ReferenceClient_ReplayedPackets_AreDroppedUnanswered(string method) =>
        AssertServerDropsAsync(method, static (_, _, _, sent) => [sent[0], sent[2], sent[1], sent[2]]);

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReferenceClient_PacketIds_SlidingWindowTakesReorderingAndDropsDuplicatesAndFarBehind(string method)
    {
        // § 3.2.4: a sliding window, not "greater than the last": late packets inside it are new, duplicates and
        // packets behind it are dropped. A million is far behind any window.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var (reference, options) = Peer(method);
        await using var server = UdpRelayChain.StartServer(options);
        using var client = Bind();
        var session = Sip022UdpReference.NewSessionId();
        var target = Sip022UdpReference.Address(echo.EndPoint);
        string Describe(byte[] datagram) => reference.OpenServer(datagram) is { } reply ? Encoding.ASCII.GetString(reply.Payload) : $"<{datagram.Length} bytes that do not open>";

        async Task<string[]> SendAsync(ulong packetId, string payload, bool expectReply)
        {
            await client.SendToAsync(reference.SealClient(session, packetId, target, Encoding.ASCII.GetBytes(payload)), SocketFlags.None, server.LocalEndPoint, cancel.Token);
            return (await CollectAsync(client, server.LocalEndPoint, expectReply ? s_reply : s_quiet, once: expectReply)).Select(Describe).ToArray();
        }

        Assert.Equal(["0"], await SendAsync(0, "0", expectReply: true));
        Assert.Equal(["5"], await SendAsync(5, "5", expectReply: true));
        Assert.Equal(["3"], await SendAsync(3, "3", expectReply: true)); // late, inside the window
        Assert.Empty(await SendAsync(3, "3 again", expectReply: false));
        Assert.Equal(["1000000"], await SendAsync(1_000_000, "1000000", expectReply: true));
        Assert.Empty(await SendAsync(4, "4, far behind now", expectReply: false));
        Assert.Equal(["1000001"], await SendAsync(1_000_001, "1000001", expectReply: true));
        Assert.Equal(5, echo.Received);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReferenceClient_SessionMovesToAnotherPort_RepliesFollowIt(string method)
    {
        // § 3.2.4: the NAT entry SHOULD track the last seen client address and send return packets there.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var (reference, options) = Peer(method);
        await using var server = UdpRelayChain.StartServer(options);
        using var before = Bind();
        using var after = Bind();
        var session = Sip022UdpReference.NewSessionId();
        var target = Sip022UdpReference.Address(echo.EndPoint);

        await before.SendToAsync(reference.SealClient(session, 0, target, "before"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        Assert.Equal("before"u8.ToArray(), reference.OpenServer(await TryReceiveAsync(before, server.LocalEndPoint, s_reply) ?? [])?.Payload);

        await after.SendToAsync(reference.SealClient(session, 1, target, "after"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        var reply = reference.OpenServer(await TryReceiveAsync(after, server.LocalEndPoint, s_reply) ?? []);
        Assert.True(reply is not null, "no reply at the session's new address");
        Assert.Equal("after"u8.ToArray(), reply.Payload);
        Assert.Equal(session, reply.ClientSessionId);
        Assert.Null(await TryReceiveAsync(before, server.LocalEndPoint, s_quiet));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReferenceClient_AClientThatMoves_KeepsItsOutboundSocket(string method)
    {
        // § 3.2.4: the server's NAT entries go by client session, so the destination sees a moved client's datagrams
        // from the same address and port as before, and its replies reach the client where it is now.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var destination = Bind();
        var (reference, options) = Peer(method);
        await using var server = UdpRelayChain.StartServer(options);
        using var before = Bind();
        using var after = Bind();
        var session = Sip022UdpReference.NewSessionId();
        var target = Sip022UdpReference.Address((IPEndPoint)destination.LocalEndPoint!);
        var buffer = new byte[2048];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);

        await before.SendToAsync(reference.SealClient(session, 0, target, "one"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        var first = await destination.ReceiveFromAsync(buffer, SocketFlags.None, any, cancel.Token);
        await after.SendToAsync(reference.SealClient(session, 1, target, "two"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        var second = await destination.ReceiveFromAsync(buffer, SocketFlags.None, any, cancel.Token);

        Assert.Equal("two"u8.ToArray(), buffer.AsSpan(0, second.ReceivedBytes).ToArray());
        Assert.Equal(first.RemoteEndPoint, second.RemoteEndPoint);
        await destination.SendToAsync("back"u8.ToArray(), SocketFlags.None, second.RemoteEndPoint, cancel.Token);
        var reply = reference.OpenServer(await TryReceiveAsync(after, server.LocalEndPoint, s_reply) ?? []);
        Assert.True(reply is not null, "no reply at the client's new address");
        Assert.Equal("back"u8.ToArray(), reply.Payload);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ASessionPushedOutForRoom_TakesItsNatEntryWithIt(string method)
    {
        // The NAT entries go by session: when a session leaves its table, its entry (an open socket) must go too, or
        // it would sit there, and a destination that kept sending to it would keep it alive. Room for two: a session
        // to the echo (an entry), one to a forbidden address (a session, no entry), then a third pushes the first out.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var (reference, options) = Peer(method);
        Assert.True(ForbiddenAddresses.TryParse("192.0.2.1", out var forbidden, out _));
        await using var server = UdpRelayChain.StartServer(options with { UdpMaxAssociations = 2, Forbidden = forbidden });
        using var client = Bind();
        var target = Sip022UdpReference.Address(echo.EndPoint);

        await client.SendToAsync(reference.SealClient(Sip022UdpReference.NewSessionId(), 0, target, "first"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        Assert.Equal("first"u8.ToArray(), reference.OpenServer(await TryReceiveAsync(client, server.LocalEndPoint, s_reply) ?? [])?.Payload);
        var nowhere = Sip022UdpReference.Address(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 9));
        await client.SendToAsync(reference.SealClient(Sip022UdpReference.NewSessionId(), 0, nowhere, "forbidden"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        Assert.Null(await TryReceiveAsync(client, server.LocalEndPoint, s_quiet));
        await client.SendToAsync(reference.SealClient(Sip022UdpReference.NewSessionId(), 0, target, "third"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        Assert.Equal("third"u8.ToArray(), reference.OpenServer(await TryReceiveAsync(client, server.LocalEndPoint, s_reply) ?? [])?.Payload);

        Assert.Equal(1, server.Associations); // the third session's; the first's entry went with its session
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task ReferenceClient_APacketReplayedFromAnotherPort_IsDroppedUnanswered(string method)
    {
        // § 3.2.4: sessions go by session ID, so a recorded packet sent again from another address meets the same
        // sliding window (keyed by address, it would have found a fresh session and reached the destination twice).
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var (reference, options) = Peer(method);
        await using var server = UdpRelayChain.StartServer(options);
        using var first = Bind();
        using var attacker = Bind();
        var session = Sip022UdpReference.NewSessionId();
        var packet = reference.SealClient(session, 0, Sip022UdpReference.Address(echo.EndPoint), "once"u8);

        await first.SendToAsync(packet, SocketFlags.None, server.LocalEndPoint, cancel.Token);
        Assert.Equal("once"u8.ToArray(), reference.OpenServer(await TryReceiveAsync(first, server.LocalEndPoint, s_reply) ?? [])?.Payload);
        await attacker.SendToAsync(packet, SocketFlags.None, server.LocalEndPoint, cancel.Token);

        Assert.Null(await TryReceiveAsync(attacker, server.LocalEndPoint, s_quiet));
        Assert.Null(await TryReceiveAsync(first, server.LocalEndPoint, s_quiet));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public Task ReferenceClient_TimestampsOver30SecondsOff_AreDroppedUnanswered(string method) =>
        AssertServerDropsAsync(method, static (reference, session, target, _) =>
        [
            reference.SealClient(session, 3, target, "stale"u8, timestamp: Sip022UdpReference.Now - 40),
            reference.SealClient(session, 4, target, "future"u8, timestamp: Sip022UdpReference.Now + 40),
        ]);

    [Theory]
    [MemberData(nameof(Methods))]
    public Task ReferenceClient_AnotherPsk_IsDroppedUnanswered(string method) =>
        AssertServerDropsAsync(method, (_, session, target, _) =>
        [
            new Sip022UdpReference(method, RandomNumberGenerator.GetBytes(Sip022UdpReference.KeySize(method))).SealClient(session, 3, target, "wrong-psk"u8),
            new Sip022UdpReference(method, RandomNumberGenerator.GetBytes(Sip022UdpReference.KeySize(method))).SealClient(Sip022UdpReference.NewSessionId(), 0, target, "wrong-psk-new-session"u8),
        ]);

    [Theory]
    [MemberData(nameof(Methods))]
    public Task ReferenceClient_ServerTypeFromAClient_IsDroppedUnanswered(string method) =>
        // § 3.2.3: a client packet has type 0; type 1 is the server's.
        AssertServerDropsAsync(method, static (reference, session, target, _) =>
            [reference.SealClient(session, 3, target, "type-1"u8, type: Sip022UdpReference.ServerType)]);

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurTunnel_ToReferenceServer_RoundTripsWithClientHeaders(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var peer = TunnelToReferenceServer(method);
        var serverSession = Sip022UdpReference.NewSessionId();

        ulong? clientSession = null;
        for (var round = 0; round < 3; round++)
        {
            var query = RandomNumberGenerator.GetBytes(round == 1 ? 1400 : 40);
            await peer.App.SendToAsync(query, SocketFlags.None, peer.Tunnel.LocalEndPoint, cancel.Token);
            var (request, from) = await ReceiveRequestAsync(peer.Server, peer.Reference);
            Assert.Equal(Sip022UdpReference.ClientType, request.Type);
            Assert.InRange(request.Age, -3, 3);
            Assert.Equal(Sip022UdpReference.Address(peer.Destination), request.Address);
            Assert.Equal(query, request.Payload);
            Assert.Equal((ulong)round, request.PacketId); // § 3.2.2: a counter from zero
            clientSession ??= request.SessionId;
            Assert.Equal(clientSession, request.SessionId);

            var answer = RandomNumberGenerator.GetBytes(round == 2 ? 1300 : 30);
            var reply = peer.Reference.SealServer(serverSession, (ulong)round, request.SessionId, Sip022UdpReference.Address(peer.Destination), answer, paddingLength: round * 20);
            await peer.Server.SendToAsync(reply, SocketFlags.None, from, cancel.Token);
            Assert.Equal(answer, await TryReceiveAsync(peer.App, peer.Tunnel.LocalEndPoint, s_reply));
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurTunnel_ReplyForAnotherClientSession_ReachesNoApp(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var peer = TunnelToReferenceServer(method);
        var serverSession = Sip022UdpReference.NewSessionId();
        var destination = Sip022UdpReference.Address(peer.Destination);

        await peer.App.SendToAsync("query"u8.ToArray(), SocketFlags.None, peer.Tunnel.LocalEndPoint, cancel.Token);
        var (request, from) = await ReceiveRequestAsync(peer.Server, peer.Reference);
        await peer.Server.SendToAsync(peer.Reference.SealServer(serverSession, 0, request.SessionId ^ 1, destination, "foreign"u8), SocketFlags.None, from, cancel.Token);
        Assert.Empty(await CollectTextAsync(peer.App, peer.Tunnel.LocalEndPoint, s_quiet));

        await peer.Server.SendToAsync(peer.Reference.SealServer(serverSession, 1, request.SessionId, destination, "own"u8), SocketFlags.None, from, cancel.Token);
        Assert.Equal(["own"], await CollectTextAsync(peer.App, peer.Tunnel.LocalEndPoint, s_reply));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurTunnel_ReplayedStaleMistypedAndForeignKeyReplies_ReachNoApp(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var peer = TunnelToReferenceServer(method);
        var serverSession = Sip022UdpReference.NewSessionId();
        var destination = Sip022UdpReference.Address(peer.Destination);

        await peer.App.SendToAsync("query"u8.ToArray(), SocketFlags.None, peer.Tunnel.LocalEndPoint, cancel.Token);
        var (request, from) = await ReceiveRequestAsync(peer.Server, peer.Reference);
        var first = peer.Reference.SealServer(serverSession, 0, request.SessionId, destination, "first"u8);
        await peer.Server.SendToAsync(first, SocketFlags.None, from, cancel.Token);
        Assert.Equal(["first"], await CollectTextAsync(peer.App, peer.Tunnel.LocalEndPoint, s_reply));

        var foreignKey = new Sip022UdpReference(method, RandomNumberGenerator.GetBytes(Sip022UdpReference.KeySize(method)));
        byte[][] bad =
        [
            first,
            peer.Reference.SealServer(serverSession, 1, request.SessionId, destination, "stale"u8, timestamp: Sip022UdpReference.Now - 40),
            peer.Reference.SealServer(serverSession, 2, request.SessionId, destination, "future"u8, timestamp: Sip022UdpReference.Now + 40),
            peer.Reference.SealServer(serverSession, 3, request.SessionId, destination, "type-0"u8, type: Sip022UdpReference.ClientType),
            foreignKey.SealServer(serverSession, 4, request.SessionId, destination, "wrong-psk"u8),
            first,
        ];
        foreach (var packet in bad)
        {
            await peer.Server.SendToAsync(packet, SocketFlags.None, from, cancel.Token);
        }

        await peer.Server.SendToAsync(peer.Reference.SealServer(serverSession, 5, request.SessionId, destination, "good"u8), SocketFlags.None, from, cancel.Token);
        Assert.Equal(["good"], await CollectTextAsync(peer.App, peer.Tunnel.LocalEndPoint, s_reply));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_ToReferenceServer_Socks5AssociateRoundTrips(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var psk = RandomNumberGenerator.GetBytes(Sip022UdpReference.KeySize(method));
        var reference = new Sip022UdpReference(method, psk);
        using var referenceServer = Bind();
        var serverEndPoint = (IPEndPoint)referenceServer.LocalEndPoint!;
        var (udp, tcp) = UdpRelayChain.StartLocal(Options(method, psk, serverEndPoint), serverEndPoint);
        await using var _ = udp;
        await using var __ = tcp;
        using var client = await Socks5UdpTestClient.AssociateAsync(tcp.LocalEndPoint, cancel.Token);
        var serverSession = Sip022UdpReference.NewSessionId();
        var destination = new IPEndPoint(IPAddress.Loopback, 5353);

        for (var round = 0; round < 2; round++)
        {
            var query = RandomNumberGenerator.GetBytes(700);
            await client.SendAsync("127.0.0.1", destination.Port, query, cancel.Token);
            var (request, from) = await ReceiveRequestAsync(referenceServer, reference);
            Assert.Equal(Sip022UdpReference.ClientType, request.Type);
            Assert.InRange(request.Age, -3, 3);
            Assert.Equal(Sip022UdpReference.Address(destination), request.Address);
            Assert.Equal((ulong)round, request.PacketId);
            Assert.Equal(query, request.Payload);

            var answer = RandomNumberGenerator.GetBytes(500);
            await referenceServer.SendToAsync(
                reference.SealServer(serverSession, (ulong)round, request.SessionId, Sip022UdpReference.Address(destination), answer), SocketFlags.None, from, cancel.Token);
            Assert.Equal(answer, await client.ReceiveAsync(cancel.Token));
        }
    }

    private static RelayOptions Options(string method, byte[] psk, IPEndPoint? server = null) =>
        RelayChain.Options(method, "unused: SIP022 takes the PSK", new IPEndPoint(IPAddress.Loopback, 0), server) with { MasterKey = psk };

    private static (Sip022UdpReference Reference, RelayOptions Options) Peer(string method)
    {
        var psk = RandomNumberGenerator.GetBytes(Sip022UdpReference.KeySize(method));
        return (new Sip022UdpReference(method, psk), Options(method, psk));
    }

    private static Socket Bind()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    /// <summary>
    /// A session of three good packets (IDs 0, 1, 2, each answered), then the packets <paramref name="bad"/> makes
    /// (given the reference, the session ID, the echo's address and the three sent packets), then a good packet with ID
    /// 100: the only reply must be the last one's, and only the four good packets reached the destination.
    /// </summary>
    private static async Task AssertServerDropsAsync(string method, Func<Sip022UdpReference, ulong, byte[], byte[][], byte[][]> bad)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var (reference, options) = Peer(method);
        await using var server = UdpRelayChain.StartServer(options);
        using var client = Bind();
        var session = Sip022UdpReference.NewSessionId();
        var target = Sip022UdpReference.Address(echo.EndPoint);
        string Describe(byte[] datagram) => reference.OpenServer(datagram) is { } reply ? Encoding.ASCII.GetString(reply.Payload) : $"<{datagram.Length} bytes that do not open>";

        var sent = new byte[3][];
        for (var packetId = 0; packetId < sent.Length; packetId++)
        {
            sent[packetId] = reference.SealClient(session, (ulong)packetId, target, Encoding.ASCII.GetBytes($"p{packetId}"));
            await client.SendToAsync(sent[packetId], SocketFlags.None, server.LocalEndPoint, cancel.Token);
            Assert.Equal([$"p{packetId}"], (await CollectAsync(client, server.LocalEndPoint, s_reply, once: true)).Select(Describe));
        }

        foreach (var packet in bad(reference, session, target, sent))
        {
            await client.SendToAsync(packet, SocketFlags.None, server.LocalEndPoint, cancel.Token);
        }

        await client.SendToAsync(reference.SealClient(session, 100, target, "good"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        Assert.Equal(["good"], (await CollectAsync(client, server.LocalEndPoint, s_reply, once: false)).Select(Describe));
        Assert.Equal(4, echo.Received);
    }

    /// <summary>Our tunnel to a fixed destination, through a reference server socket; the app's socket.</summary>
    private static TunnelPeer TunnelToReferenceServer(string method)
    {
        var psk = RandomNumberGenerator.GetBytes(Sip022UdpReference.KeySize(method));
        var server = Bind();
        var destination = new IPEndPoint(IPAddress.Loopback, 5353); // never contacted: the reference server answers for it
        var options = Options(method, psk, (IPEndPoint)server.LocalEndPoint!) with { TunnelDestination = ShadowsocksAddress.FromEndPoint(destination) };
        var tunnel = new TunnelUdpRelay(options, (IPEndPoint)server.LocalEndPoint!, ProgramScheduler.Instance);
        tunnel.Start(new IPEndPoint(IPAddress.Loopback, 0));
        return new TunnelPeer(new Sip022UdpReference(method, psk), server, tunnel, Bind(), destination);
    }

    /// <summary>The next datagram that opens as a client packet at the reference server, and where it came from.</summary>
    private static async Task<(Sip022UdpMessage Request, IPEndPoint From)> ReceiveRequestAsync(Socket server, Sip022UdpReference reference)
    {
        var unopened = 0;
        while (await ReceiveFromAsync(server, s_reply) is { } datagram)
        {
            if (reference.OpenClient(datagram.Data) is { } request)
            {
                return (request, datagram.From);
            }

            unopened++; // a stray from another test, or our packet not opening: the latter fails by the timeout
        }

        Assert.Fail($"no packet that opens reached the reference server ({unopened} did not open)");
        throw new UnreachableException();
    }

    private sealed record TunnelPeer(Sip022UdpReference Reference, Socket Server, TunnelUdpRelay Tunnel, Socket App, IPEndPoint Destination) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Tunnel.DisposeAsync();
            Server.Dispose();
            App.Dispose();
        }
    }
}
