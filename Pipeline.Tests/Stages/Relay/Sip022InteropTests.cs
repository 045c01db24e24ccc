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
/// Shadowsocks 2022 (SIP022) TCP on loopback: our server against <see cref="Sip022Reference"/> as the client, our
/// local against it as the server, and our local and server together. The reference is written from the
/// specification, independently of the production codec, so these are interop tests in all but the third party.
/// </summary>
public sealed class Sip022InteropTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    /// <summary>The server's idle timeout in the probe tests: the drain of a bad request ends with it.</summary>
    private static readonly TimeSpan s_idle = Sip022Streams.Idle;

    /// <summary>How long a bad request must go unanswered and its connection stay open.</summary>
    private static readonly TimeSpan s_quiet = Sip022Streams.Quiet;

    private static readonly string[] s_methods = ["2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305"];

    public static TheoryData<string> Methods() => new(s_methods);

    public static TheoryData<string, string> BadRequests()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in s_methods)
        {
            foreach (var kind in new[] { "timestamp 40 s old", "timestamp 40 s ahead", "type 1", "no payload, padding 0", "padding past the header chunk", "wrong PSK" })
            {
                data.Add(method, kind);
            }
        }

        return data;
    }

    public static TheoryData<string, string> Replays()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in s_methods)
        {
            data.Add(method, "identical bytes");
            data.Add(method, "same salt, new request");
        }

        return data;
    }

    public static TheoryData<string, string> BadResponses()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in s_methods)
        {
            foreach (var kind in new[] { "wrong request salt", "type 0", "timestamp 40 s old", "timestamp 40 s ahead", "wrong PSK" })
            {
                data.Add(method, kind);
            }
        }

        return data;
    }

    // --- a, b: our server, the reference client ---

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurServer_ReferenceClient_InitialPayloadThenMoreThan64KiB_EchoedByteExact(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var psk = NewPsk(method);
        await using var server = StartServer(method, psk);
        using var client = new Sip022Reference(method, psk);
        using var socket = await ConnectAsync(server.LocalEndPoint, cancel.Token);

        var initial = RandomNumberGenerator.GetBytes(1000);
        var more = RandomNumberGenerator.GetBytes((3 * Sip022Reference.MaxPayload) + 4321); // full 0xFFFF chunks and a short one
        var request = client.EncodeRequest(Sip022Reference.Address(destination.EndPoint), Sip022Reference.Now, Sip022Reference.MaxPadding, initial);
        await socket.SendAsync(request, SocketFlags.None, cancel.Token);
        var sending = SendAllAsync(socket, client.EncodeChunks(more), cancel.Token);

        var response = await client.ReadResponseHeaderAsync(socket, cancel.Token);
        AssertGoodResponseHeader(client, response.Type, response.Timestamp, response.RequestSalt, response.Payload);
        var echoed = await ReadPayloadAsync(client, socket, response.Payload, initial.Length + more.Length, cancel.Token);
        await sending;
        AssertSameBytes([.. initial, .. more], echoed);

        // Half-close: our FIN reaches the destination, whose FIN comes back as a clean end at a chunk boundary.
        socket.Shutdown(SocketShutdown.Send);
        Assert.Null(await client.ReadChunkAsync(socket, cancel.Token));
        Assert.Equal(1, destination.Accepted);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurServer_ReferenceClient_NoPayloadRandomPaddingThenData_Echoed(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var psk = NewPsk(method);
        await using var server = StartServer(method, psk);
        using var client = new Sip022Reference(method, psk);
        using var socket = await ConnectAsync(server.LocalEndPoint, cancel.Token);

        // The address by name this time (ATYP 3), resolved on the server.
        var padding = RandomNumberGenerator.GetInt32(1, Sip022Reference.MaxPadding + 1);
        var request = client.EncodeRequest(Sip022Reference.Address("localhost", destination.EndPoint.Port), Sip022Reference.Now, padding, []);
        await socket.SendAsync(request, SocketFlags.None, cancel.Token);
        var data = RandomNumberGenerator.GetBytes(Sip022Reference.MaxPayload + 1);
        await SendAllAsync(socket, client.EncodeChunks(data), cancel.Token);

        var response = await client.ReadResponseHeaderAsync(socket, cancel.Token);
        AssertGoodResponseHeader(client, response.Type, response.Timestamp, response.RequestSalt, response.Payload);
        AssertSameBytes(data, await ReadPayloadAsync(client, socket, response.Payload, data.Length, cancel.Token));
        socket.Shutdown(SocketShutdown.Send);
        Assert.Null(await client.ReadChunkAsync(socket, cancel.Token));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurServer_ReferenceClient_DestinationSpeaksFirst_ResponseCarriesItsGreeting(string method)
    {
        // A request with padding and no payload must still be connected at once: the destination may speak first.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var destination = Listen();
        var greeting = "220 destination ready\r\n"u8.ToArray();
        var greeter = Task.Run(async () =>
        {
            using var connection = await destination.AcceptAsync(cancel.Token);
            await connection.SendAsync(greeting, SocketFlags.None, cancel.Token);
            var answer = new byte[6];
            await Socks5TestClient.ReadExactlyAsync(connection, answer, cancel.Token);
            return answer;
        }, cancel.Token);
        var psk = NewPsk(method);
        await using var server = StartServer(method, psk);
        using var client = new Sip022Reference(method, psk);
        using var socket = await ConnectAsync(server.LocalEndPoint, cancel.Token);

        var request = client.EncodeRequest(Sip022Reference.Address((IPEndPoint)destination.LocalEndPoint!), Sip022Reference.Now, 100, []);
        await socket.SendAsync(request, SocketFlags.None, cancel.Token);
        var response = await client.ReadResponseHeaderAsync(socket, cancel.Token);
        AssertGoodResponseHeader(client, response.Type, response.Timestamp, response.RequestSalt, response.Payload);
        AssertSameBytes(greeting, await ReadPayloadAsync(client, socket, response.Payload, greeting.Length, cancel.Token));
        await socket.SendAsync(client.EncodeChunks("QUIT\r\n"u8), SocketFlags.None, cancel.Token);
        Assert.Equal("QUIT\r\n"u8.ToArray(), await greeter);
    }

    [Theory]
    [InlineData("2022-blake3-aes-128-gcm", -25)]
    [InlineData("2022-blake3-aes-256-gcm", 25)]
    [InlineData("2022-blake3-chacha20-poly1305", -25)]
    public async Task OurServer_ReferenceClient_TimestampWithin30s_Served(string method, int offsetSeconds)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var psk = NewPsk(method);
        await using var server = StartServer(method, psk);
        using var client = new Sip022Reference(method, psk);
        using var socket = await ConnectAsync(server.LocalEndPoint, cancel.Token);
        var payload = RandomNumberGenerator.GetBytes(500);
        await socket.SendAsync(client.EncodeRequest(Sip022Reference.Address(destination.EndPoint), Sip022Reference.Now + offsetSeconds, 0, payload), SocketFlags.None, cancel.Token);
        var response = await client.ReadResponseHeaderAsync(socket, cancel.Token);
        AssertGoodResponseHeader(client, response.Type, response.Timestamp, response.RequestSalt, response.Payload);
        AssertSameBytes(payload, await ReadPayloadAsync(client, socket, response.Payload, payload.Length, cancel.Token));
    }

    // --- c: bad requests get no answer and an idle-timeout close ---

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task OurServer_BadRequest_NoAnswer_ClosedOnlyAtIdleTimeout(string method, string kind)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var psk = NewPsk(method);
        await using var server = StartServer(method, psk, s_idle);
        using var client = new Sip022Reference(method, kind == "wrong PSK" ? NewPsk(method) : psk);
        var address = Sip022Reference.Address(destination.EndPoint);
        var payload = RandomNumberGenerator.GetBytes(100);
        var request = kind switch
        {
            "timestamp 40 s old" => client.EncodeRequest(address, Sip022Reference.Now - 40, 16, payload),
            "timestamp 40 s ahead" => client.EncodeRequest(address, Sip022Reference.Now + 40, 16, payload),
            "type 1" => client.EncodeRequest(address, Sip022Reference.Now, 16, payload, type: Sip022Reference.ResponseType),
            "no payload, padding 0" => client.EncodeRequest(address, Sip022Reference.Now, 0, []),
            "padding past the header chunk" => client.EncodeRequest(address, Sip022Reference.Now, 10, [], declaredPaddingLength: 500),
            "wrong PSK" => client.EncodeRequest(address, Sip022Reference.Now, 16, payload),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
        var followUp = client.EncodeChunks(RandomNumberGenerator.GetBytes(300));

        using var socket = await ConnectAsync(server.LocalEndPoint, cancel.Token);
        await socket.SendAsync((byte[])[.. request, .. followUp], SocketFlags.None, cancel.Token);
        await AssertSilentThenClosedAtIdleAsync(socket, cancel.Token);
        Assert.Equal(0, destination.Accepted);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurServer_ProbesAndBrokenRequests_NoAnswer_ClosedOnlyAtIdleTimeout(string method)
    {
        // Random probes around the header sizes, a well-formed request cut short at several points, and one with a
        // byte changed in either header chunk: every one unanswered, every close the same (FIN at the idle timeout).
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var psk = NewPsk(method);
        await using var server = StartServer(method, psk, s_idle);
        var keySize = Sip022Reference.KeySizeOf(method);
        var fixedEnd = keySize + Sip022Reference.RequestFixedHeaderSize + Sip022Reference.TagSize;
        using var client = new Sip022Reference(method, psk);
        var good = client.EncodeRequest(Sip022Reference.Address(destination.EndPoint), Sip022Reference.Now, 50, RandomNumberGenerator.GetBytes(100));

        var probes = new List<(string Name, byte[] Bytes)>();
        foreach (var length in new[] { 1, keySize - 1, keySize, keySize + 1, fixedEnd - 1, fixedEnd, fixedEnd + 1, 100, 221 })
        {
            probes.Add(($"random {length}", RandomNumberGenerator.GetBytes(length)));
        }

        foreach (var cut in new[] { keySize, keySize + 10, fixedEnd, fixedEnd + 20, good.Length - 1 })
        {
            probes.Add(($"request cut at {cut}", good[..cut]));
        }

        foreach (var position in new[] { 0, keySize, fixedEnd - 1, fixedEnd, good.Length - 1 })
        {
            var changed = good.ToArray();
            changed[position] ^= 0x01;
            probes.Add(($"request with byte {position} changed", changed));
        }

        await Task.WhenAll(probes.Select(async probe =>
        {
            using var socket = await ConnectAsync(server.LocalEndPoint, cancel.Token);
            await socket.SendAsync(probe.Bytes, SocketFlags.None, cancel.Token);
            try
            {
                await AssertSilentThenClosedAtIdleAsync(socket, cancel.Token);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new Xunit.Sdk.XunitException($"{probe.Name}: {e.Message}");
            }
        }));
        Assert.Equal(0, destination.Accepted);
    }

    [Theory]
    [MemberData(nameof(Replays))]
    public async Task OurServer_ReplayedSalt_FirstServed_SecondNoAnswer(string method, string kind)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var psk = NewPsk(method);
        await using var server = StartServer(method, psk, s_idle);
        var address = Sip022Reference.Address(destination.EndPoint);
        var salt = RandomNumberGenerator.GetBytes(Sip022Reference.KeySizeOf(method));
        var payload = RandomNumberGenerator.GetBytes(200);
        using var original = new Sip022Reference(method, psk);
        var recording = original.EncodeRequest(address, Sip022Reference.Now, 32, payload, salt: salt);

        using (var first = await ConnectAsync(server.LocalEndPoint, cancel.Token))
        {
            await first.SendAsync(recording, SocketFlags.None, cancel.Token);
            var response = await original.ReadResponseHeaderAsync(first, cancel.Token);
            AssertGoodResponseHeader(original, response.Type, response.Timestamp, response.RequestSalt, response.Payload);
            AssertSameBytes(payload, await ReadPayloadAsync(original, first, response.Payload, payload.Length, cancel.Token));
        }

        byte[] replay;
        if (kind == "identical bytes")
        {
            replay = recording;
        }
        else
        {
            // A fresh, well-formed request (new timestamp, padding and payload) that only reuses the salt.
            using var again = new Sip022Reference(method, psk);
            replay = again.EncodeRequest(address, Sip022Reference.Now, 77, RandomNumberGenerator.GetBytes(150), salt: salt);
        }

        using var second = await ConnectAsync(server.LocalEndPoint, cancel.Token);
        await second.SendAsync(replay, SocketFlags.None, cancel.Token);
        await AssertSilentThenClosedAtIdleAsync(second, cancel.Token);
        Assert.Equal(1, destination.Accepted);
    }

    // --- d: our local, the reference server ---

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_ReferenceServer_Socks5Connect_DataBothWays(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var psk = NewPsk(method);
        using var listener = Listen();
        const int port = 4321; // never connected: the reference server checks the address and echoes itself
        var serving = EchoOnceAsync(listener, method, psk, cancel.Token);
        await using var local = StartLocal(method, psk, (IPEndPoint)listener.LocalEndPoint!);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 300_000, cancel.Token);

        var request = await serving;
        AssertGoodRequest(request, [1, 127, 0, 0, 1, port >> 8, port & 0xFF]);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_ReferenceServer_ServerSpeaksFirst_HeaderSentWithPaddingAlone(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var psk = NewPsk(method);
        using var listener = Listen();
        var greeting = "220 reference server ready\r\n"u8.ToArray();
        var serving = Task.Run(async () =>
        {
            using var connection = await listener.AcceptAsync(cancel.Token);
            using var server = new Sip022Reference(method, psk);
            var request = await server.ReadRequestAsync(connection, cancel.Token);
            await connection.SendAsync(server.EncodeResponse(Sip022Reference.Now, server.ReceiveSalt!, greeting), SocketFlags.None, cancel.Token);
            var answer = await server.ReadChunkAsync(connection, cancel.Token);
            return (request, answer);
        }, cancel.Token);
        await using var local = StartLocal(method, psk, (IPEndPoint)listener.LocalEndPoint!);

        // The SOCKS5 client sends nothing: the local must send the header (with padding) on its own.
        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "example.com", 25, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        var received = new byte[greeting.Length];
        await Socks5TestClient.ReadExactlyAsync(socket, received, cancel.Token);
        Assert.Equal(greeting, received);
        await socket.SendAsync("QUIT\r\n"u8.ToArray(), SocketFlags.None, cancel.Token);

        var (request, answer) = await serving;
        AssertGoodRequest(request, Sip022Reference.Address("example.com", 25));
        Assert.Empty(request.InitialPayload);
        Assert.InRange(request.PaddingLength, 1, Sip022Reference.MaxPadding);
        Assert.Equal("QUIT\r\n"u8.ToArray(), answer);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_WritesSaltAndBothHeaderChunksAtOnce(string method)
    {
        // SIP022 § 3.1.3: the salt and the header chunks MUST be buffered and sent in one write. On loopback one
        // write arrives whole, so the first read holds all three (separate writes could arrive apart).
        using var cancel = new CancellationTokenSource(s_timeout);
        var psk = NewPsk(method);
        using var listener = Listen();
        var serving = Task.Run(async () =>
        {
            using var connection = await listener.AcceptAsync(cancel.Token);
            var buffer = new byte[64 * 1024];
            var n = await connection.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            return buffer[..n];
        }, cancel.Token);
        await using var local = StartLocal(method, psk, (IPEndPoint)listener.LocalEndPoint!);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", 80, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await socket.SendAsync("GET / HTTP/1.0\r\n\r\n"u8.ToArray(), SocketFlags.None, cancel.Token);
        var firstRead = await serving;

        using var server = new Sip022Reference(method, psk);
        var keySize = server.KeySize;
        var fixedEnd = keySize + Sip022Reference.RequestFixedHeaderSize + Sip022Reference.TagSize;
        Assert.True(firstRead.Length >= fixedEnd, $"the first read held {firstRead.Length} bytes, less than the salt and fixed header ({fixedEnd})");
        server.BeginReceiving(firstRead.AsSpan(0, keySize));
        var fixedHeader = server.Open(firstRead.AsSpan(keySize, fixedEnd - keySize));
        var variableEnd = fixedEnd + ((fixedHeader[9] << 8) | fixedHeader[10]) + Sip022Reference.TagSize;
        Assert.True(firstRead.Length >= variableEnd, $"the first read held {firstRead.Length} bytes, less than salt and both header chunks ({variableEnd})");
        var variable = server.Open(firstRead.AsSpan(fixedEnd, variableEnd - fixedEnd));
        Assert.Equal(new byte[] { 1, 127, 0, 0, 1, 0, 80 }, variable[..7]);
    }

    [Theory]
    [MemberData(nameof(BadResponses))]
    public async Task OurLocal_BadResponseHeader_NoPayloadReachesClient_Closed(string method, string kind)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var psk = NewPsk(method);
        using var listener = Listen();
        using var hold = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            using var connection = await listener.AcceptAsync(cancel.Token);
            using var server = new Sip022Reference(method, kind == "wrong PSK" ? NewPsk(method) : psk);
            using var check = new Sip022Reference(method, psk);
            var request = await check.ReadRequestAsync(connection, cancel.Token);
            var requestSalt = check.ReceiveSalt!;
            var secret = "SECRET payload the client must never see"u8.ToArray();
            var response = kind switch
            {
                "wrong request salt" => server.EncodeResponse(Sip022Reference.Now, Flip(requestSalt), secret),
                "type 0" => server.EncodeResponse(Sip022Reference.Now, requestSalt, secret, type: Sip022Reference.RequestType),
                "timestamp 40 s old" => server.EncodeResponse(Sip022Reference.Now - 40, requestSalt, secret),
                "timestamp 40 s ahead" => server.EncodeResponse(Sip022Reference.Now + 40, requestSalt, secret),
                "wrong PSK" => server.EncodeResponse(Sip022Reference.Now, requestSalt, secret),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
            };
            await connection.SendAsync((byte[])[.. response, .. server.EncodeChunks(secret)], SocketFlags.None, cancel.Token);

            // Stay open: the close the client sees must be the local's doing, not ours.
            try
            {
                await Task.Delay(Timeout.Infinite, hold.Token);
            }
            catch (OperationCanceledException)
            {
            }

            return request;
        }, cancel.Token);
        await using var local = StartLocal(method, psk, (IPEndPoint)listener.LocalEndPoint!);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", 443, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await socket.SendAsync("hello"u8.ToArray(), SocketFlags.None, cancel.Token);

        var (received, closed) = await ReadUntilClosedAsync(socket, TimeSpan.FromSeconds(5), cancel.Token);
        hold.Cancel();
        var request = await serving;
        AssertGoodRequest(request, [1, 127, 0, 0, 1, 1, 187]);
        Assert.True(received.Length == 0, $"the client got {received.Length} bytes past a bad response header: {Encoding.ASCII.GetString(received)}");
        Assert.NotEqual("still open", closed);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_ResponseSaltSeenBefore_SecondResponseStillRead(string method)
    {
        // SIP022 § 3.1.5: clients SHOULD NOT check the salts of responses (the request salt in the response header ties
        // it to its request). The reference server answers two connections under one response salt, each response
        // otherwise well-formed (its own request salt, now): both reach the SOCKS5 client.
        using var cancel = new CancellationTokenSource(s_timeout);
        var psk = NewPsk(method);
        using var listener = Listen();
        var responseSalt = RandomNumberGenerator.GetBytes(Sip022Reference.KeySizeOf(method));
        using var hold = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            for (var i = 0; i < 2; i++)
            {
                using var connection = await listener.AcceptAsync(cancel.Token);
                using var server = new Sip022Reference(method, psk);
                var request = await server.ReadRequestAsync(connection, cancel.Token);
                var data = request.InitialPayload.Length > 0 ? request.InitialPayload : await server.ReadChunkAsync(connection, cancel.Token) ?? [];
                await connection.SendAsync(server.EncodeResponse(Sip022Reference.Now, server.ReceiveSalt!, data, salt: responseSalt), SocketFlags.None, cancel.Token);
                if (i == 1)
                {
                    try
                    {
                        await Task.Delay(Timeout.Infinite, hold.Token);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }
            }
        }, cancel.Token);
        await using var local = StartLocal(method, psk, (IPEndPoint)listener.LocalEndPoint!);

        foreach (var word in new[] { "first", "second" })
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", 443, cancel.Token);
            using var _ = socket;
            Assert.Equal(0, reply);
            await socket.SendAsync(Encoding.ASCII.GetBytes(word), SocketFlags.None, cancel.Token);
            var echoed = new byte[word.Length];
            await Socks5TestClient.ReadExactlyAsync(socket, echoed, cancel.Token);
            Assert.Equal(word, Encoding.ASCII.GetString(echoed));
        }

        hold.Cancel();
        await serving;
    }

    // --- e: our local and our server ---

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurLocal_OurServer_Socks5_OneMiBEachWay(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var psk = NewPsk(method);
        await using var server = StartServer(method, psk);
        await using var local = StartLocal(method, psk, server.LocalEndPoint);
        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 1 << 20, cancel.Token);
        Assert.Equal(1 << 20, destination.BytesReceived);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurTunnel_OurServer_OneMiBEachWay(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var psk = NewPsk(method);
        await using var server = StartServer(method, psk);
        var options = Options(method, psk, server.LocalEndPoint) with { TunnelDestination = ShadowsocksAddress.FromEndPoint(destination.EndPoint) };
        await using var tunnel = new TunnelRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        tunnel.Start();
        using var socket = await ConnectAsync(tunnel.LocalEndPoint, cancel.Token);
        await Transfer.EchoRoundTripAsync(socket, 1 << 20, cancel.Token);
    }

    // --- helpers ---

    private static byte[] NewPsk(string method) => RandomNumberGenerator.GetBytes(Sip022Reference.KeySizeOf(method));

    /// <summary>Like <see cref="RelayChain.Options"/>, with the PSK as the master key (never derived from a password).</summary>
    private static RelayOptions Options(string method, byte[] psk, EndPoint? server = null, TimeSpan? idle = null)
    {
        Assert.True(CipherCatalog.TryGet(method, out var cipher), $"method {method} missing from the catalog");
        Assert.Equal(psk.Length, cipher.KeySize);
        return new RelayOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Cipher = cipher,
            MasterKey = psk,
            Server = server,
            IdleTimeout = idle ?? TimeSpan.FromSeconds(30),
            HandshakeTimeout = TimeSpan.FromSeconds(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
        };
    }

    private static ServerTcpRelay StartServer(string method, byte[] psk, TimeSpan? idle = null)
    {
        var server = new ServerTcpRelay(Options(method, psk, idle: idle), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        return server;
    }

    private static LocalTcpRelay StartLocal(string method, byte[] psk, IPEndPoint server)
    {
        var local = new LocalTcpRelay(Options(method, psk, server), ProgramScheduler.Instance, TimeProvider.System);
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

    /// <summary>
    /// The reference server for one connection: reads the request, answers with a proper response carrying the
    /// first data back, echoes every later chunk, half-closes after the local's clean end, and returns the request.
    /// </summary>
    private static Task<(byte Type, long Timestamp, byte[] Address, int PaddingLength, byte[] InitialPayload)> EchoOnceAsync(
        Socket listener, string method, byte[] psk, CancellationToken cancellationToken) =>
        Task.Run(async () =>
        {
            using var connection = await listener.AcceptAsync(cancellationToken);
            connection.NoDelay = true;
            using var server = new Sip022Reference(method, psk);
            var request = await server.ReadRequestAsync(connection, cancellationToken);
            var first = request.InitialPayload;
            while (first.Length == 0)
            {
                first = await server.ReadChunkAsync(connection, cancellationToken) ?? throw new IOException("the local closed before any data");
            }

            await SendAllAsync(connection, server.EncodeResponse(Sip022Reference.Now, server.ReceiveSalt!, first), cancellationToken);
            while (await server.ReadChunkAsync(connection, cancellationToken) is { } chunk)
            {
                await SendAllAsync(connection, server.EncodeChunks(chunk), cancellationToken);
            }

            connection.Shutdown(SocketShutdown.Send);
            return request;
        }, cancellationToken);

    private static void AssertGoodRequest((byte Type, long Timestamp, byte[] Address, int PaddingLength, byte[] InitialPayload) request, byte[] address)
    {
        Assert.Equal(Sip022Reference.RequestType, request.Type);
        Assert.InRange(request.Timestamp, Sip022Reference.Now - 30, Sip022Reference.Now + 30);
        Assert.Equal(address, request.Address);
        Assert.InRange(request.PaddingLength, 0, Sip022Reference.MaxPadding);
        Assert.True(request.InitialPayload.Length > 0 || request.PaddingLength > 0, "a request with no initial payload must have padding");
    }

    private static void AssertGoodResponseHeader(Sip022Reference client, byte type, long timestamp, byte[] requestSalt, byte[] firstPayload)
    {
        Assert.Equal(Sip022Reference.ResponseType, type);
        Assert.InRange(timestamp, Sip022Reference.Now - 30, Sip022Reference.Now + 30);
        Assert.Equal(client.SendSalt, requestSalt);
        Assert.NotEqual(client.SendSalt, client.ReceiveSalt); // the response has its own salt
        Assert.NotEmpty(firstPayload); // § 3.1.3: the response header is always sent along with payload
    }

    private static byte[] Flip(byte[] bytes)
    {
        var flipped = bytes.ToArray();
        flipped[0] ^= 0x80;
        return flipped;
    }
}
