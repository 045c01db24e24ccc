using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Protocol;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

using static Shadowsocks.Pipeline.Tests.Stages.Relay.Sip022Streams;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// SIP023 (Shadowsocks 2022 Extensible Identity Headers) over TCP on loopback: our multi-user server against
/// <see cref="Sip023Reference"/> as the client, our local and tunnel (with identity keys) against it as a multi-user
/// server, and our local and server together. The reference is written from the specification, independently of
/// the production code.
/// </summary>
public sealed class Sip023InteropTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    /// <summary>The server's idle timeout in the refusal tests: the drain of a bad request ends with it.</summary>
    private static readonly TimeSpan s_idle = Sip022Streams.Idle;

    /// <summary>How long a bad request must go unanswered and its connection stay open.</summary>
    private static readonly TimeSpan s_quiet = Sip022Streams.Quiet;

    public static TheoryData<string> Methods() => new(Sip023Reference.Methods);

    public static TheoryData<string, string> BadRequests()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in Sip023Reference.Methods)
        {
            foreach (var kind in new[]
            {
                "bad tag (the control: alice's header, a byte of the first chunk changed)",
                "unknown user",
                "no identity header, SIP022 under the iPSK",
                "no identity header, SIP022 under alice's key",
                "alice's identity header, bob's body",
                "identity header under another iPSK",
                "identity header made for another salt",
                "cut inside the identity header",
            })
            {
                data.Add(method, kind);
            }
        }

        return data;
    }

    public static TheoryData<string, string> Replays()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in Sip023Reference.Methods)
        {
            data.Add(method, "identical bytes");
            data.Add(method, "same salt, the same user's new request");
            data.Add(method, "same salt, another user's new request");
        }

        return data;
    }

    // --- our server, the reference client ---

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurServer_ReferenceClientWithIdentityHeader_EchoedByteExact_ResponseUnderTheUserKeyOnly(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys);
        using var client = new Sip022Reference(method, keys.Alice);
        using var socket = await ConnectAsync(server.LocalEndPoint, cancel.Token);

        var initial = RandomNumberGenerator.GetBytes(1000);
        var more = RandomNumberGenerator.GetBytes((2 * Sip022Reference.MaxPayload) + 4321);
        var request = client.EncodeRequest(Sip022Reference.Address(destination.EndPoint), Sip022Reference.Now, 50, initial);
        await socket.SendAsync(Sip023Reference.WithTcpIdentityHeaders(request, [keys.Identity], keys.Alice), SocketFlags.None, cancel.Token);
        var sending = SendAllAsync(socket, client.EncodeChunks(more), cancel.Token);

        var response = await ReadResponseHeaderAsync(method, client, socket, [keys.Identity, keys.Bob], cancel.Token);
        AssertGoodResponseHeader(client, response);
        var echoed = await ReadPayloadAsync(client, socket, response.Payload, initial.Length + more.Length, cancel.Token);
        await sending;
        AssertSameBytes([.. initial, .. more], echoed);

        socket.Shutdown(SocketShutdown.Send);
        Assert.Null(await client.ReadChunkAsync(socket, cancel.Token));
        Assert.Equal(1, destination.Accepted);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurServer_TwoUsersAtOnce_EachServedUnderItsOwnKey(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys);
        using var alice = new Sip022Reference(method, keys.Alice);
        using var bob = new Sip022Reference(method, keys.Bob);
        using var aliceSocket = await ConnectAsync(server.LocalEndPoint, cancel.Token);
        using var bobSocket = await ConnectAsync(server.LocalEndPoint, cancel.Token);
        var address = Sip022Reference.Address(destination.EndPoint);

        // Both requests in before either answer is read: two users' connections open at once.
        var alicePayload = Encoding.ASCII.GetBytes("alice's first bytes");
        var bobPayload = Encoding.ASCII.GetBytes("bob's first bytes, a little longer");
        await aliceSocket.SendAsync(Sip023Reference.WithTcpIdentityHeaders(alice.EncodeRequest(address, Sip022Reference.Now, 0, alicePayload), [keys.Identity], keys.Alice), SocketFlags.None, cancel.Token);
        await bobSocket.SendAsync(Sip023Reference.WithTcpIdentityHeaders(bob.EncodeRequest(address, Sip022Reference.Now, 0, bobPayload), [keys.Identity], keys.Bob), SocketFlags.None, cancel.Token);

        var bobResponse = await ReadResponseHeaderAsync(method, bob, bobSocket, [keys.Identity, keys.Alice], cancel.Token);
        var aliceResponse = await ReadResponseHeaderAsync(method, alice, aliceSocket, [keys.Identity, keys.Bob], cancel.Token);
        AssertGoodResponseHeader(alice, aliceResponse);
        AssertGoodResponseHeader(bob, bobResponse);
        AssertSameBytes(alicePayload, await ReadPayloadAsync(alice, aliceSocket, aliceResponse.Payload, alicePayload.Length, cancel.Token));
        AssertSameBytes(bobPayload, await ReadPayloadAsync(bob, bobSocket, bobResponse.Payload, bobPayload.Length, cancel.Token));

        // Each keeps going under its own key.
        var aliceMore = RandomNumberGenerator.GetBytes(20_000);
        var bobMore = RandomNumberGenerator.GetBytes(30_000);
        await SendAllAsync(aliceSocket, alice.EncodeChunks(aliceMore), cancel.Token);
        await SendAllAsync(bobSocket, bob.EncodeChunks(bobMore), cancel.Token);
        AssertSameBytes(bobMore, await ReadPayloadAsync(bob, bobSocket, [], bobMore.Length, cancel.Token));
        AssertSameBytes(aliceMore, await ReadPayloadAsync(alice, aliceSocket, [], aliceMore.Length, cancel.Token));
        Assert.Equal(2, destination.Accepted);
    }

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task OurServer_BadIdentity_NoAnswer_ClosedOnlyAtIdleTimeout_LikeABadTag(string method, string kind)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys, s_idle);
        var address = Sip022Reference.Address(destination.EndPoint);
        var payload = RandomNumberGenerator.GetBytes(100);
        var stranger = Keys.NewKey(method);
        var bodyKey = kind switch
        {
            "unknown user" => stranger,
            "no identity header, SIP022 under the iPSK" => keys.Identity,
            "alice's identity header, bob's body" => keys.Bob,
            _ => keys.Alice,
        };
        using var client = new Sip022Reference(method, bodyKey);
        var plain = client.EncodeRequest(address, Sip022Reference.Now, 16, payload);
        var salt = plain[..client.KeySize];
        var rest = plain[client.KeySize..];
        byte[] request = kind switch
        {
            "bad tag (the control: alice's header, a byte of the first chunk changed)" => Flip(Sip023Reference.WithTcpIdentityHeaders(plain, [keys.Identity], keys.Alice), client.KeySize + 16),
            "unknown user" => Sip023Reference.WithTcpIdentityHeaders(plain, [keys.Identity], stranger),
            "no identity header, SIP022 under the iPSK" or "no identity header, SIP022 under alice's key" => plain,
            "alice's identity header, bob's body" => [.. salt, .. Sip023Reference.TcpIdentityHeaders([keys.Identity], keys.Alice, salt), .. rest],
            "identity header under another iPSK" => Sip023Reference.WithTcpIdentityHeaders(plain, [Keys.NewKey(method)], keys.Alice),
            "identity header made for another salt" => [.. salt, .. Sip023Reference.TcpIdentityHeaders([keys.Identity], keys.Alice, Keys.NewKey(method)), .. rest],
            "cut inside the identity header" => Sip023Reference.WithTcpIdentityHeaders(plain, [keys.Identity], keys.Alice)[..(client.KeySize + 8)],
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
        byte[] followUp = kind == "cut inside the identity header" ? [] : client.EncodeChunks(RandomNumberGenerator.GetBytes(300));

        using var socket = await ConnectAsync(server.LocalEndPoint, cancel.Token);
        await socket.SendAsync((byte[])[.. request, .. followUp], SocketFlags.None, cancel.Token);
        await AssertSilentThenClosedAtIdleAsync(socket, cancel.Token);
        Assert.Equal(0, destination.Accepted);
    }

    [Theory]
    [MemberData(nameof(Replays))]
    public async Task OurServer_ReplayedSaltWithIdentityHeader_FirstServed_SecondNoAnswer(string method, string kind)
    {
        // SIP022 § 3.1.5: a salt seen in the last 60 s closes the session, whoever sends it: every user knows the
        // iPSK, but a salt is in the clear anyway.
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys, s_idle);
        var address = Sip022Reference.Address(destination.EndPoint);
        var salt = Keys.NewKey(method);
        using var original = new Sip022Reference(method, keys.Bob);
        var payload = RandomNumberGenerator.GetBytes(200);
        var recording = Sip023Reference.WithTcpIdentityHeaders(original.EncodeRequest(address, Sip022Reference.Now, 32, payload, salt: salt), [keys.Identity], keys.Bob);

        using (var first = await ConnectAsync(server.LocalEndPoint, cancel.Token))
        {
            await first.SendAsync(recording, SocketFlags.None, cancel.Token);
            var response = await ReadResponseHeaderAsync(method, original, first, [keys.Identity], cancel.Token);
            AssertGoodResponseHeader(original, response);
            AssertSameBytes(payload, await ReadPayloadAsync(original, first, response.Payload, payload.Length, cancel.Token));
        }

        var userKey = kind == "same salt, another user's new request" ? keys.Alice : keys.Bob;
        using var again = new Sip022Reference(method, userKey);
        var replay = kind == "identical bytes"
            ? recording
            : Sip023Reference.WithTcpIdentityHeaders(again.EncodeRequest(address, Sip022Reference.Now, 77, RandomNumberGenerator.GetBytes(150), salt: salt), [keys.Identity], userKey);

        using var second = await ConnectAsync(server.LocalEndPoint, cancel.Token);
        await second.SendAsync(replay, SocketFlags.None, cancel.Token);
        await AssertSilentThenClosedAtIdleAsync(second, cancel.Token);
        Assert.Equal(1, destination.Accepted);
    }

    // --- our local and tunnel, the reference multi-user server ---

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_IdentityKey_ReferenceServerFindsTheUser_Socks5DataBothWays(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var keys = Keys.New(method);
        using var listener = Listen();
        const int port = 4321; // never connected: the reference server checks the address and echoes itself
        var serving = EchoOnceAsync(listener, method, [keys.Identity], keys.Users, cancel.Token);
        await using var local = StartLocal(method, [keys.Identity], keys.Bob, (IPEndPoint)listener.LocalEndPoint!);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 300_000, cancel.Token);

        var (user, request) = await serving;
        Assert.Equal("bob", user);
        AssertGoodRequest(request, [1, 127, 0, 0, 1, port >> 8, port & 0xFF]);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_TwoIdentityKeys_ReferenceChecksBothHeadersInOrder(string method)
    {
        // client (iPSK0:iPSK1:uPSK) -> relay [iPSK0] -> server [iPSK1, users]: the reference plays relay and server.
        using var cancel = new CancellationTokenSource(s_timeout);
        var keys = Keys.New(method);
        var relayKey = Keys.NewKey(method);
        using var listener = Listen();
        var serving = EchoOnceAsync(listener, method, [relayKey, keys.Identity], keys.Users, cancel.Token);
        await using var local = StartLocal(method, [relayKey, keys.Identity], keys.Alice, (IPEndPoint)listener.LocalEndPoint!);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "example.com", 443, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 100_000, cancel.Token);

        var (user, request) = await serving;
        Assert.Equal("alice", user);
        AssertGoodRequest(request, Sip022Reference.Address("example.com", 443));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_WritesSaltIdentityHeaderAndBothHeaderChunksAtOnce(string method)
    {
        // SIP022 § 3.1.3 asks for the salt and the header chunks in one write; the identity header sits between them.
        using var cancel = new CancellationTokenSource(s_timeout);
        var keys = Keys.New(method);
        using var listener = Listen();
        var serving = Task.Run(async () =>
        {
            using var connection = await listener.AcceptAsync(cancel.Token);
            var buffer = new byte[64 * 1024];
            var n = await connection.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            return buffer[..n];
        }, cancel.Token);
        await using var local = StartLocal(method, [keys.Identity], keys.Alice, (IPEndPoint)listener.LocalEndPoint!);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", 80, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await socket.SendAsync("GET / HTTP/1.0\r\n\r\n"u8.ToArray(), SocketFlags.None, cancel.Token);
        var firstRead = await serving;

        var size = Sip023Reference.KeySize(method);
        var fixedEnd = size + Sip023Reference.IdentityHeaderSize + Sip022Reference.RequestFixedHeaderSize + Sip022Reference.TagSize;
        Assert.True(firstRead.Length >= fixedEnd, $"the first read held {firstRead.Length} bytes, less than the salt, identity header and fixed header ({fixedEnd})");
        var salt = firstRead.AsSpan(0, size);
        Assert.Equal("alice", Sip023Reference.FindTcp(keys.Identity, salt, firstRead.AsSpan(size, 16), keys.Users)?.Name);
        using var server = new Sip022Reference(method, keys.Alice);
        server.BeginReceiving(salt);
        var fixedHeader = server.Open(firstRead.AsSpan(size + 16, fixedEnd - size - 16));
        Assert.Equal(Sip022Reference.RequestType, fixedHeader[0]);
        var variableEnd = fixedEnd + BinaryPrimitives.ReadUInt16BigEndian(fixedHeader.AsSpan(9)) + Sip022Reference.TagSize;
        Assert.True(firstRead.Length >= variableEnd, $"the first read held {firstRead.Length} bytes, less than salt, identity header and both header chunks ({variableEnd})");
        var variable = server.Open(firstRead.AsSpan(fixedEnd, variableEnd - fixedEnd));
        Assert.Equal(new byte[] { 1, 127, 0, 0, 1, 0, 80 }, variable[..7]);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurTunnel_IdentityKey_ReferenceServerFindsTheUser(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var keys = Keys.New(method);
        using var listener = Listen();
        var serving = EchoOnceAsync(listener, method, [keys.Identity], keys.Users, cancel.Token);
        var destination = new IPEndPoint(IPAddress.Loopback, 5432); // never connected: the reference echoes
        var options = Options(method, keys.Bob, (IPEndPoint)listener.LocalEndPoint!) with
        {
            IdentityKeys = [keys.Identity],
            TunnelDestination = ShadowsocksAddress.FromEndPoint(destination),
        };
        await using var tunnel = new TunnelRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        tunnel.Start();
        using var socket = await ConnectAsync(tunnel.LocalEndPoint, cancel.Token);
        await Transfer.EchoRoundTripAsync(socket, 70_000, cancel.Token);

        var (user, request) = await serving;
        Assert.Equal("bob", user);
        AssertGoodRequest(request, Sip022Reference.Address(destination));
    }

    // --- our local and our server ---

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocals_OurMultiUserServer_TwoUsersAtOnce_StrangerGetsNothing(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var keys = Keys.New(method);
        await using var server = StartServer(method, keys, s_idle);
        await using var alice = StartLocal(method, [keys.Identity], keys.Alice, server.LocalEndPoint);
        await using var bob = StartLocal(method, [keys.Identity], keys.Bob, server.LocalEndPoint);
        await using var stranger = StartLocal(method, [keys.Identity], Keys.NewKey(method), server.LocalEndPoint);

        await Task.WhenAll(
            Transfer.EchoThroughSocks5Async(alice.LocalEndPoint, destination.EndPoint.Port, 1, 1 << 20, cancel.Token),
            Transfer.EchoThroughSocks5Async(bob.LocalEndPoint, destination.EndPoint.Port, 1, 1 << 19, cancel.Token));
        Assert.Equal((1 << 20) + (1 << 19), destination.BytesReceived);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(stranger.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply); // the local answers SOCKS5 itself; the server's silence comes after
        await socket.SendAsync("hello?"u8.ToArray(), SocketFlags.None, cancel.Token);
        var (received, _) = await ReadUntilClosedAsync(socket, s_idle + TimeSpan.FromSeconds(2), cancel.Token);
        Assert.True(received.Length == 0, $"a stranger got {received.Length} bytes back: {Encoding.ASCII.GetString(received)}");
        Assert.Equal(2, destination.Accepted);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_TwoIdentityKeys_OurServerWithoutTheRelay_Refused(string method)
    {
        // client (iPSK0:iPSK1:uPSK) straight to the server [iPSK1]: the first header is the relay's, under iPSK0's
        // subkey, and names no user of the server's. Nothing may reach the destination, nothing come back.
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var keys = Keys.New(method);
        var relayKey = Keys.NewKey(method);
        await using var server = StartServer(method, keys, s_idle);
        await using var local = StartLocal(method, [relayKey, keys.Identity], keys.Alice, server.LocalEndPoint);
        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await socket.SendAsync("hello?"u8.ToArray(), SocketFlags.None, cancel.Token);
        var (received, _) = await ReadUntilClosedAsync(socket, s_idle + TimeSpan.FromSeconds(2), cancel.Token);
        Assert.Empty(received);
        Assert.Equal(0, destination.Accepted);
    }

    // --- helpers ---

    /// <summary>A server's identity key and its two users' keys, all of the method's size.</summary>
    private sealed record Keys(byte[] Identity, byte[] Alice, byte[] Bob)
    {
        public (string Name, byte[] Key)[] Users => [("alice", Alice), ("bob", Bob)];

        public static Keys New(string method) => new(NewKey(method), NewKey(method), NewKey(method));

        public static byte[] NewKey(string method) => RandomNumberGenerator.GetBytes(Sip023Reference.KeySize(method));
    }

    private static RelayOptions Options(string method, byte[] key, EndPoint? server = null, TimeSpan? idle = null)
    {
        Assert.True(CipherCatalog.TryGet(method, out var cipher), $"method {method} missing from the catalog");
        Assert.Equal(key.Length, cipher.KeySize);
        return new RelayOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Cipher = cipher,
            MasterKey = key,
            Server = server,
            IdleTimeout = idle ?? TimeSpan.FromSeconds(30),
            HandshakeTimeout = TimeSpan.FromSeconds(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
        };
    }

    /// <summary>Our server: its password the iPSK, users alice and bob.</summary>
    private static ServerTcpRelay StartServer(string method, Keys keys, TimeSpan? idle = null)
    {
        var options = Options(method, keys.Identity, idle: idle) with { Users = [new UserKey("alice", keys.Alice), new UserKey("bob", keys.Bob)] };
        var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        return server;
    }

    /// <summary>Our local with the password <c>iPSK:...:uPSK</c>.</summary>
    private static LocalTcpRelay StartLocal(string method, byte[][] identityKeys, byte[] userKey, IPEndPoint server)
    {
        var local = new LocalTcpRelay(Options(method, userKey, server) with { IdentityKeys = identityKeys }, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        return local;
    }

    private static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        return listener;
    }

    private static async Task<Socket> ConnectAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint, cancellationToken);
        return socket;
    }

    private static async Task SendAllAsync(Socket socket, byte[] bytes, CancellationToken cancellationToken)
    {
        for (var offset = 0; offset < bytes.Length;)
        {
            offset += await socket.SendAsync(bytes.AsMemory(offset), SocketFlags.None, cancellationToken);
        }
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        await Socks5TestClient.ReadExactlyAsync(socket, buffer, cancellationToken);
        return buffer;
    }

    /// <summary>
    /// Client role: reads the response's salt and header chunk raw, checks that the header chunk does not open under
    /// any of <paramref name="notUnder"/> (the server's iPSK, another user's key), then opens it and the payload chunk
    /// it announces under the client's own key. An identity header in the response would make that fail too.
    /// </summary>
    private static async Task<(byte Type, long Timestamp, byte[] RequestSalt, byte[] Payload)> ReadResponseHeaderAsync(
        string method, Sip022Reference client, Socket socket, byte[][] notUnder, CancellationToken cancellationToken)
    {
        var salt = await ReadExactlyAsync(socket, client.KeySize, cancellationToken);
        var sealedHeader = await ReadExactlyAsync(socket, client.ResponseFixedHeaderSize + Sip022Reference.TagSize, cancellationToken);
        foreach (var key in notUnder)
        {
            using var other = new Sip022Reference(method, key);
            other.BeginReceiving(salt);
            Assert.ThrowsAny<CryptographicException>(() => other.Open(sealedHeader));
        }

        client.BeginReceiving(salt);
        var header = client.Open(sealedHeader);
        var length = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(9 + client.KeySize));
        var payload = client.Open(await ReadExactlyAsync(socket, length + Sip022Reference.TagSize, cancellationToken));
        return (header[0], (long)BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(1)), header[9..(9 + client.KeySize)], payload);
    }

    private static void AssertGoodResponseHeader(Sip022Reference client, (byte Type, long Timestamp, byte[] RequestSalt, byte[] Payload) response)
    {
        Assert.Equal(Sip022Reference.ResponseType, response.Type);
        Assert.InRange(response.Timestamp, Sip022Reference.Now - 30, Sip022Reference.Now + 30);
        Assert.Equal(client.SendSalt, response.RequestSalt);
        Assert.NotEqual(client.SendSalt, client.ReceiveSalt);
        Assert.NotEmpty(response.Payload);
    }

    private static void AssertGoodRequest((byte Type, long Timestamp, byte[] Address, int PaddingLength, byte[] InitialPayload) request, byte[] address)
    {
        Assert.Equal(Sip022Reference.RequestType, request.Type);
        Assert.InRange(request.Timestamp, Sip022Reference.Now - 30, Sip022Reference.Now + 30);
        Assert.Equal(address, request.Address);
        Assert.InRange(request.PaddingLength, 0, Sip022Reference.MaxPadding);
        Assert.True(request.InitialPayload.Length > 0 || request.PaddingLength > 0, "a request with no initial payload must have padding");
    }

    /// <summary>
    /// The reference multi-user server for one connection, behind <paramref name="layers"/> identity layers: finds the
    /// user, reads the request under the user's key, answers with a proper response carrying the first data back,
    /// echoes every later chunk, half-closes after the client's clean end; returns the user and the request.
    /// </summary>
    private static Task<(string User, (byte Type, long Timestamp, byte[] Address, int PaddingLength, byte[] InitialPayload) Request)> EchoOnceAsync(
        Socket listener, string method, byte[][] layers, (string Name, byte[] Key)[] users, CancellationToken cancellationToken) =>
        Task.Run(async () =>
        {
            using var connection = await listener.AcceptAsync(cancellationToken);
            connection.NoDelay = true;
            var (user, server, request) = await Sip023Reference.ReadTcpRequestAsync(connection, method, layers, users, cancellationToken);
            using var _ = server;
            var first = request.InitialPayload;
            while (first.Length == 0)
            {
                first = await server.ReadChunkAsync(connection, cancellationToken) ?? throw new IOException("the client closed before any data");
            }

            await SendAllAsync(connection, server.EncodeResponse(Sip022Reference.Now, server.ReceiveSalt!, first), cancellationToken);
            while (await server.ReadChunkAsync(connection, cancellationToken) is { } chunk)
            {
                await SendAllAsync(connection, server.EncodeChunks(chunk), cancellationToken);
            }

            connection.Shutdown(SocketShutdown.Send);
            return (user, request);
        }, cancellationToken);

    private static byte[] Flip(byte[] bytes, int position)
    {
        var flipped = bytes.ToArray();
        flipped[position] ^= 0x01;
        return flipped;
    }
}
