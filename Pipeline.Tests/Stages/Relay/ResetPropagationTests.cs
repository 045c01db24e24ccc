using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Protocol;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A connection that ends abnormally on one end ends abnormally on the other: a reset (or a stream that fails
/// authentication) reaches the far end as a reset, after the bytes that came before it, never as a FIN that would let
/// a cut-off transfer pass for a complete one. A FIN still arrives as a FIN. Each process on the way counts the
/// connection once in <c>pipeline.connections_reset</c>, by the side that broke it and how.
/// </summary>
[Collection(nameof(ConnectionResetCountCollection))]
public sealed class ResetPropagationTests
{
    // A few bytes fit every socket buffer on the way, so they are all delivered before the reset; of a bulk transfer
    // cut off by a reset, what still sat in the resetting end's socket buffer is lost (TCP drops it with the reset):
    // the far end gets a prefix, and then the reset. The relays on the way lose nothing (the next test).
    private const int Small = 1000;
    private const int Bulk = 4 << 20;

    [Theory]
    [InlineData("aes-256-gcm", false, Small)]
    [InlineData("chacha20-ietf-poly1305", false, Small)]
    [InlineData("aes-256-gcm", true, Small)]
    [InlineData("aes-256-gcm", false, Bulk)]
    public async Task DestinationReset_ReachesTheClient_AsAReset_AfterTheBytesBeforeIt(string method, bool throughTunnel, int size)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var spans = new BrokenConnectionSpans(); // before the connection: its spans start with it
        await using var pair = await ConnectedPairAsync(method, throughTunnel, cancel.Token);
        using var counts = new ResetCounts();
        var sent = RandomNumberGenerator.GetBytes(size);
        var sending = pair.Destination.SendAsync(sent, SocketFlags.None, cancel.Token).AsTask();
        var reading = ReadToTheEndAsync(pair.Client, cancel.Token);
        await WhenSentAsync(sending, size);
        pair.Destination.LingerState = new LingerOption(true, 0);
        pair.Destination.Close(); // RST

        var (received, end) = await reading;
        AssertDelivered(sent, received, size);
        Assert.Equal(SocketError.ConnectionReset, end);
        Assert.Equal("remote/reset=2", counts.Snapshot()); // the server's destination, then the local's server
        Assert.Equal([$"{(throughTunnel ? "server" : "local")}: reset by the remote", $"{(throughTunnel ? "tunnel" : "server")}: reset by the remote"], await spans.EndedAsync(2));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task DestinationReset_AfterTheServerHasItsWholeAnswer_ReachesASlowClient_AfterAllOfIt(bool throughTunnel, bool clientSendsAfterTheReset)
    {
        // The destination's answer has all reached the server's kernel (nothing queued at the destination) when it
        // resets; the client reads slowly, so most of the answer still sits in the relays' send queues toward the
        // local and the client. A reset at once would discard them (SO_LINGER 0): each relay's reset must wait until
        // its peer has what is queued (ResetAfterDelivery), and the client gets every byte, then the reset.
        // With the client sending a little more after the reset, the server's send to the destination fails: a failed
        // send is the destination's reset too, and ends the connection as a reset read does, after what the
        // destination sent before it. (Found in review: it ended the connection at once, and 3.8 of 4 MiB arrived.)
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await ConnectedPairAsync("aes-256-gcm", throughTunnel, cancel.Token, clientReceiveBuffer: 16 << 10);
        using var counts = new ResetCounts();
        var sent = RandomNumberGenerator.GetBytes(clientSendsAfterTheReset ? 4 << 20 : 1 << 20);
        var reading = ReadToTheEndAsync(pair.Client, cancel.Token, readSize: 8 << 10, pause: TimeSpan.FromMilliseconds(2));
        await pair.Destination.SendAsync(sent, SocketFlags.None, cancel.Token);
        while (SocketIo.UnsentBytes(pair.Destination) != 0)
        {
            await Task.Delay(5, cancel.Token);
        }

        pair.Destination.LingerState = new LingerOption(true, 0);
        pair.Destination.Close(); // RST: what it sent has all been delivered to the server
        if (clientSendsAfterTheReset)
        {
            await Task.Delay(50, cancel.Token);
            await pair.Client.SendAsync(new byte[100], SocketFlags.None, cancel.Token);
        }

        var (received, end) = await reading;
        Assert.Equal(sent.Length, received.Length);
        Assert.Equal(sent, received);
        Assert.Equal(SocketError.ConnectionReset, end);

        // The server learns of the reset from a receive, or from its send; the local from the server's reset.
        Assert.Contains(counts.Snapshot(), clientSendsAfterTheReset ? new[] { "remote/reset=1,remote/send_failed=1", "remote/reset=2" } : new[] { "remote/reset=2" });
    }

    [Theory]
    [InlineData("aes-256-gcm", false, Small)]
    [InlineData("chacha20-ietf-poly1305", true, Small)]
    [InlineData("chacha20-ietf-poly1305", false, Bulk)]
    public async Task ClientReset_ReachesTheDestination_AsAReset_AfterTheBytesBeforeIt(string method, bool throughTunnel, int size)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await ConnectedPairAsync(method, throughTunnel, cancel.Token);
        using var counts = new ResetCounts();
        var sent = RandomNumberGenerator.GetBytes(size);
        var sending = pair.Client.SendAsync(sent, SocketFlags.None, cancel.Token).AsTask();
        var reading = ReadToTheEndAsync(pair.Destination, cancel.Token);
        await WhenSentAsync(sending, size);
        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close();

        var (received, end) = await reading;
        AssertDelivered(sent, received, size);
        Assert.Equal(SocketError.ConnectionReset, end);
        Assert.Equal("client/reset=2", counts.Snapshot()); // the local's client, then the server's
    }

    [Theory]
    [InlineData(3_150_000)] // the server's pump reads the reset, and its drain toward the destination stalls
    [InlineData(3_250_000)] // the server's pump, held back by the destination, never reads the reset at all
    public async Task ClientReset_WhileTheDestinationDoesNotRead_ReachesItAsAReset_AtTheIdleTimeout(int size)
    {
        // The destination reads nothing (its receive window 4 KiB): the client sends a little more than the way to
        // it holds, then resets. Either way the idle timeout ends the connection (nothing moves), and the destination
        // must then get a reset, not a FIN after a cut-off stream. (Found in review: the idle timer's close went
        // out as a FIN, the reset decided only after a drain that never finished.)
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.ReceiveBufferSize = 4096;
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        await using var chain = RelayChain.Start("aes-256-gcm", tune: o => o with { IdleTimeout = TimeSpan.FromSeconds(2) });
        var (client, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", port, cancel.Token);
        using var __ = client;
        Assert.Equal(0, reply);
        await client.SendAsync("hello"u8.ToArray(), SocketFlags.None, cancel.Token);
        using var destination = await listener.AcceptAsync(cancel.Token);
        await Socks5TestClient.ReadExactlyAsync(destination, new byte[5], cancel.Token);
        using var counts = new ResetCounts();

        var sent = RandomNumberGenerator.GetBytes(size);
        _ = client.SendAsync(sent, SocketFlags.None, cancel.Token).AsTask().ContinueWith(static _ => { }, TaskScheduler.Default);
        await Task.Delay(1000, cancel.Token);
        client.LingerState = new LingerOption(true, 0);
        client.Close(); // RST, while the destination has not read

        await Task.Delay(TimeSpan.FromSeconds(3.5), cancel.Token); // past the idle timeout
        var (received, end) = await ReadToTheEndAsync(destination, cancel.Token);
        Assert.True(sent.AsSpan(0, received.Length).SequenceEqual(received), "what arrived is not the start of what was sent");
        Assert.Equal(SocketError.ConnectionReset, end);
        Assert.Equal("client/reset=2", counts.Snapshot());
    }

    [Fact]
    public async Task HalfClosedClient_WhoseUploadTheDestinationDoesNotRead_IsReset_AtTheIdleTimeout()
    {
        // The client uploads 1 MiB through a tunnel and our server (idle timeout 1 s) to a destination that reads
        // nothing (its receive window 4 KiB), and half-closes. The upload stays with the server, in its hands or in its
        // send queue, and the idle timeout ends the connection: the client must learn that its upload was lost, by a
        // reset, not a FIN after which it takes the upload for delivered (found in review: only the destination was
        // reset). The tunnel's timeout is long: it has handed everything to the server, and passes on what it does.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var chain = await SlowDestinationChain.StartAsync(cancel.Token);
        var (listener, client) = (chain.Listener, chain.Client);

        await client.SendAsync(RandomNumberGenerator.GetBytes(1 << 20), SocketFlags.None, cancel.Token);
        client.Shutdown(SocketShutdown.Send);
        using var destination = await listener.AcceptAsync(cancel.Token);

        var (received, end) = await ReadToTheEndAsync(client, cancel.Token); // the idle timeout ends it
        Assert.Empty(received);
        Assert.Equal(SocketError.ConnectionReset, end);
        var (_, destinationEnd) = await ReadToTheEndAsync(destination, cancel.Token);
        Assert.Equal(SocketError.ConnectionReset, destinationEnd);
    }

    [Fact]
    public async Task DestinationReset_WhileTheRelaysStillSendToIt_NeverReachesTheClientAsAFin()
    {
        // The client uploads, then stops; the destination stops reading and resets while the relays' sends to it are
        // under way. A send that takes the reset's error leaves the read of that side an end of stream (no error is
        // left for it): read before the send's failure marked the side, it was passed on as a FIN, and the reset came
        // after it (found in review: 7 to 17 runs in 300). The connection's state (CLOSE, no FIN sent) tells a reset.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var listener = Listen();
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        await using var chain = RelayChain.Start("aes-256-gcm");
        var fins = 0;
        for (var i = 0; i < 100; i++)
        {
            var (client, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", port, cancel.Token);
            using var _ = client;
            Assert.Equal(0, reply);
            await client.SendAsync("hello"u8.ToArray(), SocketFlags.None, cancel.Token);
            using var destination = await listener.AcceptAsync(cancel.Token);
            await Socks5TestClient.ReadExactlyAsync(destination, new byte[5], cancel.Token);

            // Non-blocking sends: no send of the client's own is under way to take the error of the reset it gets later.
            var stop = false;
            client.Blocking = false;
            var uploading = Task.Run(async () =>
            {
                var block = new byte[16 << 10];
                while (!Volatile.Read(ref stop))
                {
                    client.Send(block, 0, block.Length, SocketFlags.None, out var error);
                    if (error == SocketError.WouldBlock)
                    {
                        await Task.Delay(1);
                    }
                    else if (error != SocketError.Success)
                    {
                        break;
                    }
                }
            });
            using var stopReading = new CancellationTokenSource();
            var draining = Task.Run(async () =>
            {
                var buffer = new byte[64 << 10];
                try
                {
                    while (await destination.ReceiveAsync(buffer, SocketFlags.None, stopReading.Token) > 0)
                    {
                    }
                }
                catch (OperationCanceledException)
                {
                }
            });
            await Task.Delay(Random.Shared.Next(5, 30), cancel.Token);
            Volatile.Write(ref stop, true);
            await uploading;
            await Task.Delay(Random.Shared.Next(0, 3), cancel.Token);
            await stopReading.CancelAsync();
            await draining;
            destination.LingerState = new LingerOption(true, 0);
            destination.Close(); // RST, with the relays' buffers toward it full

            var (_, end) = await ReadToTheEndAsync(client, cancel.Token);
            if (end == SocketError.Success)
            {
                fins++;
            }
        }

        Assert.Equal(0, fins);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task DestinationReset_WhileTheClientReadsNothing_ReachesItAsAReset_AtTheIdleTimeout(bool clientSendsAfterTheReset)
    {
        // Every buffer toward the client is full and it reads nothing; the destination resets, and the server's pump,
        // held back, does not read the reset. Nothing moves until the idle timeout: the local must then reset the
        // client, whose stream is cut short, rather than send it a FIN (found in review: 3.6 of 8 MiB, then a clean
        // end). With the client sending after the reset, the server's send to the destination fails first.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var listener = Listen();
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        await using var chain = RelayChain.Start("aes-256-gcm", tune: o => o with { IdleTimeout = TimeSpan.FromSeconds(1) });
        var (client, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", port, cancel.Token, receiveBuffer: 16 << 10);
        using var clientOwner = client;
        Assert.Equal(0, reply);
        await client.SendAsync("hello"u8.ToArray(), SocketFlags.None, cancel.Token);
        using var destination = await listener.AcceptAsync(cancel.Token);
        await Socks5TestClient.ReadExactlyAsync(destination, new byte[5], cancel.Token);

        var answer = RandomNumberGenerator.GetBytes(8 << 20);
        _ = destination.SendAsync(answer, SocketFlags.None, cancel.Token).AsTask().ContinueWith(static _ => { }, TaskScheduler.Default);
        await Task.Delay(500, cancel.Token); // every buffer on the way fills
        destination.LingerState = new LingerOption(true, 0);
        destination.Close(); // RST
        if (clientSendsAfterTheReset)
        {
            await Task.Delay(50, cancel.Token);
            await client.SendAsync(new byte[100], SocketFlags.None, cancel.Token);
        }

        await Task.Delay(TimeSpan.FromSeconds(3), cancel.Token); // past both relays' idle timeouts
        var (received, end) = await ReadToTheEndAsync(client, cancel.Token);
        Assert.True(answer.AsSpan(0, received.Length).SequenceEqual(received), "what arrived is not the start of what was sent");
        Assert.Equal(SocketError.ConnectionReset, end);
    }

    [Theory]
    [InlineData(false, 1 << 20)]
    [InlineData(true, 4 << 20)]
    [InlineData(false, 8 << 20)]
    public async Task DestinationFin_ThenAResetInReplyToLateData_IsAWholeAnswer_AndEndsWithAFin(bool throughTunnel, int size)
    {
        // The destination sends its whole answer and closes normally (FIN). The client, not reading yet, sends a few
        // more bytes, which the closed destination answers with a reset. The answer was complete: a client connected
        // directly reads all of it and then an end of stream, and so must this one. (Found in review: a check for
        // resets whose error a send had taken turned this FIN into a reset; such a reset leaves EPIPE, not ECONNRESET.)
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await ConnectedPairAsync("aes-256-gcm", throughTunnel, cancel.Token, clientReceiveBuffer: 16 << 10);
        var sent = RandomNumberGenerator.GetBytes(size);
        var sending = pair.Destination.SendAsync(sent, SocketFlags.None, cancel.Token).AsTask();
        for (var waited = 0; !sending.IsCompleted || SocketIo.UnsentBytes(pair.Destination) != 0; waited++)
        {
            Assert.True(waited < 1000, $"the answer never left the destination: unsent {SocketIo.UnsentBytes(pair.Destination)}");
            await Task.Delay(5, cancel.Token);
        }

        pair.Destination.Close(); // FIN, nothing unread
        await Task.Delay(50, cancel.Token);
        await pair.Client.SendAsync(new byte[100], SocketFlags.None, cancel.Token);
        await Task.Delay(200, cancel.Token);

        var (received, end) = await ReadToTheEndAsync(pair.Client, cancel.Token);
        Assert.Equal(sent.Length, received.Length);
        Assert.Equal(SocketError.Success, end);
    }

    /// <summary>A small send has completed; a bulk one is reset halfway (it cannot complete while the reader is slower than the relay's buffers hold).</summary>
    private static async Task WhenSentAsync(Task sending, int size)
    {
        if (size == Small)
        {
            await sending;
            await Task.Delay(100); // through every hop (the receive is already waiting at the far end)
        }
        else
        {
            await Task.Delay(20);
        }
    }

    private static void AssertDelivered(byte[] sent, byte[] received, int size)
    {
        if (size == Small)
        {
            Assert.Equal(sent, received);
        }
        else
        {
            Assert.InRange(received.Length, 1, sent.Length);
            Assert.True(sent.AsSpan(0, received.Length).SequenceEqual(received), "what arrived is not the start of what was sent");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AFin_StillArrivesAsAFin(bool destinationCloses)
    {
        // The control: an ordinary close is passed on as an ordinary close, with everything before it.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await ConnectedPairAsync("aes-256-gcm", throughTunnel: false, cancel.Token);
        using var counts = new ResetCounts();
        var (closing, other) = destinationCloses ? (pair.Destination, pair.Client) : (pair.Client, pair.Destination);
        var sent = RandomNumberGenerator.GetBytes(Bulk);
        var reading = ReadToTheEndAsync(other, cancel.Token);
        await closing.SendAsync(sent, SocketFlags.None, cancel.Token);
        closing.Shutdown(SocketShutdown.Both);
        closing.Close();

        var (received, end) = await reading;
        Assert.Equal(sent, received);
        Assert.Equal(SocketError.Success, end);
        Assert.Equal("", counts.Snapshot());
    }

    [Fact]
    public async Task ServersStreamFailingAuthentication_ResetsTheLocalsClient_AfterTheBytesBeforeIt()
    {
        // A stand-in server answers with one good chunk, then one whose tag is wrong (corrupted on the way).
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var fakeServer = Listen();
        var options = RelayChain.Options("aes-256-gcm", "mid-stream", new IPEndPoint(IPAddress.Loopback, 0), fakeServer.LocalEndPoint);
        await using var local = new LocalTcpRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        var (client, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", 9, cancel.Token);
        using var _ = client;
        Assert.Equal(0, reply);
        await client.SendAsync("request"u8.ToArray(), SocketFlags.None, cancel.Token);
        using var tunnel = await fakeServer.AcceptAsync(cancel.Token);

        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        await tunnel.SendAsync(StreamCodecKit.Encrypt(encryptor, "good bytes"u8.ToArray()), SocketFlags.None, cancel.Token);
        var good = new byte[10];
        await Socks5TestClient.ReadExactlyAsync(client, good, cancel.Token);
        Assert.Equal("good bytes"u8.ToArray(), good);

        using var counts = new ResetCounts();
        var corrupted = StreamCodecKit.Encrypt(encryptor, "bad bytes"u8.ToArray());
        corrupted[^1] ^= 1;
        await tunnel.SendAsync(corrupted, SocketFlags.None, cancel.Token);

        var (rest, end) = await ReadToTheEndAsync(client, cancel.Token);
        Assert.Empty(rest);
        Assert.Equal(SocketError.ConnectionReset, end);
        Assert.Equal("remote/authentication_failed=1", counts.Snapshot());

        // And the server's side is reset too (the server is ours: no probe to hide from), so that it passes on a
        // reset, not a FIN, to a destination whose upload the local's teardown cut short.
        var (_, tunnelEnd) = await ReadToTheEndAsync(tunnel, cancel.Token);
        Assert.Equal(SocketError.ConnectionReset, tunnelEnd);
    }

    [Fact]
    public async Task ClientsStreamFailingAuthentication_ResetsTheServersDestination_AfterTheBytesBeforeIt()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var destination = Listen();
        var options = RelayChain.Options("chacha20-ietf-poly1305", "mid-stream", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(server.LocalEndPoint, cancel.Token);
        var header = StreamCodecKit.Header(ShadowsocksAddress.FromEndPoint((IPEndPoint)destination.LocalEndPoint!));
        await client.SendAsync(StreamCodecKit.Encrypt(encryptor, [.. header, .. "good bytes"u8]), SocketFlags.None, cancel.Token);
        using var accepted = await destination.AcceptAsync(cancel.Token);
        var good = new byte[10];
        await Socks5TestClient.ReadExactlyAsync(accepted, good, cancel.Token);
        Assert.Equal("good bytes"u8.ToArray(), good);

        using var counts = new ResetCounts();
        var corrupted = StreamCodecKit.Encrypt(encryptor, "bad bytes"u8.ToArray());
        corrupted[^1] ^= 1;
        await client.SendAsync(corrupted, SocketFlags.None, cancel.Token);

        var (rest, end) = await ReadToTheEndAsync(accepted, cancel.Token);
        Assert.Empty(rest);
        Assert.Equal(SocketError.ConnectionReset, end);
        Assert.Equal("client/authentication_failed=1", counts.Snapshot());

        // Only the destination: the Shadowsocks client is drained until the idle timeout, as a probe is
        // (StreamFailingAuthenticationTests).
    }

    private static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        return listener;
    }

    /// <summary>A client connected through our local (or tunnel) and server to a destination socket of the test's own.</summary>
    private static async Task<ConnectedPair> ConnectedPairAsync(string method, bool throughTunnel, CancellationToken cancellationToken, int clientReceiveBuffer = 0)
    {
        var listener = Listen();
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var chain = RelayChain.Start(method, tunnelTo: throughTunnel ? ShadowsocksAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, port)) : null);
        Socket client;
        if (throughTunnel)
        {
            client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            if (clientReceiveBuffer > 0)
            {
                client.ReceiveBufferSize = clientReceiveBuffer; // before connecting: shrunk afterwards, loopback TCP stalls
            }

            await client.ConnectAsync(chain.Tunnel!.LocalEndPoint, cancellationToken);
            await client.SendAsync("hello"u8.ToArray(), SocketFlags.None, cancellationToken); // a tunnel connects on first data
        }
        else
        {
            (client, var reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", port, cancellationToken, clientReceiveBuffer);
            Assert.Equal(0, reply);
            await client.SendAsync("hello"u8.ToArray(), SocketFlags.None, cancellationToken);
        }

        var destination = await listener.AcceptAsync(cancellationToken);
        await Socks5TestClient.ReadExactlyAsync(destination, new byte[5], cancellationToken);
        return new ConnectedPair(chain, listener, client, destination);
    }

    /// <summary>Everything <paramref name="socket"/> receives, and how its stream ended: Success for a FIN, else the error.</summary>
    internal static async Task<(byte[] Received, SocketError End)> ReadToTheEndAsync(
        Socket socket, CancellationToken cancellationToken, int readSize = 65536, TimeSpan pause = default)
    {
        var received = new MemoryStream();
        var buffer = new byte[readSize];
        while (true)
        {
            if (pause > TimeSpan.Zero)
            {
                await Task.Delay(pause, cancellationToken);
            }

            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            }
            catch (SocketException e)
            {
                return (received.ToArray(), e.SocketErrorCode);
            }

            if (n == 0)
            {
                return (received.ToArray(), SocketError.Success);
            }

            received.Write(buffer, 0, n);
        }
    }

    private sealed record ConnectedPair(RelayChain Chain, Socket Listener, Socket Client, Socket Destination) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            Destination.Dispose();
            Listener.Dispose();
            await Chain.DisposeAsync();
        }
    }
}
