using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Protocol;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A server's client whose stream fails authentication after its header has authenticated (the data stages run): a
/// prober replaying a recorded connection with bytes changed after its first chunk. It must see what a failed header
/// gets (PROTOCOL.md § Probe resistance): no answer, its bytes read and discarded, and a FIN only at the idle timeout
/// after its last bytes; the destination gets a reset. Counts a reset (the destination's), hence the collection.
/// </summary>
[Collection(nameof(ConnectionResetCountCollection))]
public sealed class StreamFailingAuthenticationTests
{
    private static readonly TimeSpan s_idle = TimeSpan.FromSeconds(2);

    /// <summary>How much earlier than the idle timeout after the last bytes sent the close may come (the server reads them a little later).</summary>
    private static readonly TimeSpan s_slack = TimeSpan.FromMilliseconds(300);

    [Theory]
    [InlineData("aes-256-gcm")]
    [InlineData("chacha20-ietf-poly1305")]
    [InlineData("2022-blake3-aes-256-gcm")]
    public async Task ClientsChunkFailingAuthenticationAfterTheHeader_IsDrainedUntilTheIdleTimeout_AndTheDestinationReset(string method)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var counts = new ResetCounts();
        await using var failed = await FailedStreamAsync(method, s_idle, cancel.Token);
        Assert.Equal("client/authentication_failed=1", counts.Snapshot());

        // The client keeps sending for a while after the destination's reset, as a prober would; every send is taken
        // (a closed server socket would answer the first with a reset), and the drained client still counts as a
        // connection. Then it goes quiet.
        var reading = ResetPropagationTests.ReadToTheEndAsync(failed.Client, cancel.Token);
        var lastSent = Stopwatch.StartNew();
        for (var i = 0; i < 4; i++)
        {
            Assert.False(reading.IsCompleted, $"the server closed the client after {i} of 4 sends following the bad chunk");
            await failed.Client.SendAsync(RandomNumberGenerator.GetBytes(1000), SocketFlags.None, cancel.Token);
            lastSent.Restart();
            await Task.WhenAny(reading, Task.Delay(TimeSpan.FromMilliseconds(250), cancel.Token));
        }

        Assert.False(reading.IsCompleted, "the server closed the client before the idle timeout after its last bytes");
        Assert.Equal(1, failed.Server.ActiveSessions);

        // No answer, and a FIN (not a reset: everything sent was read) only at the idle timeout after the last bytes.
        var (answer, clientEnd) = await reading;
        var closedAfter = lastSent.Elapsed;
        Assert.Empty(answer);
        Assert.Equal(SocketError.Success, clientEnd);
        Assert.True(closedAfter >= s_idle - s_slack, $"the server closed the client {closedAfter.TotalSeconds:F2} s after its last bytes, before the idle timeout ({s_idle.TotalSeconds} s)");
        await WhenNoSessionsAsync(failed.Server, cancel.Token);
    }

    [Fact]
    public async Task DrainedClient_IsClosed_WhenTheRelayStops()
    {
        // An idle timeout far beyond the test's deadline: only the relay's stop can end the drain in time.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var failed = await FailedStreamAsync("aes-256-gcm", TimeSpan.FromMinutes(5), cancel.Token);
        await failed.Client.SendAsync(RandomNumberGenerator.GetBytes(1000), SocketFlags.None, cancel.Token);
        var reading = ResetPropagationTests.ReadToTheEndAsync(failed.Client, cancel.Token);
        Assert.Equal(1, failed.Server.ActiveSessions);
        Assert.False(reading.IsCompleted, "the server closed the client before it stopped");

        await failed.Server.DisposeAsync();
        var (answer, clientEnd) = await reading;
        Assert.Empty(answer);

        // A FIN, or a reset when the stop closed the socket before the drain had read the bytes just sent (the kernel
        // resets a socket closed with unread bytes: seen under load). Either way the stop ended it, well before 5 min.
        Assert.True(clientEnd is SocketError.Success or SocketError.ConnectionReset, $"the client's stream ended with {clientEnd}");
        await WhenNoSessionsAsync(failed.Server, cancel.Token);
    }

    [Fact]
    public async Task DrainedClient_IsNotWaitedFor_AndIsClosedWithAFin_WhenTheRelayStopsAccepting()
    {
        // A graceful stop: the drained client is no connection the grace waits for, and the listener's close ends it
        // at once (the relay is not disposed here), as its idle timeout would have: a FIN, nothing sent.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var failed = await FailedStreamAsync("aes-256-gcm", TimeSpan.FromMinutes(5), cancel.Token);
        var reading = ResetPropagationTests.ReadToTheEndAsync(failed.Client, cancel.Token);
        Assert.Equal(1, failed.Server.ActiveSessions);
        Assert.Equal(0, failed.Server.ServingSessions);
        Assert.False(reading.IsCompleted, "the server closed the client before it stopped");

        failed.Server.StopAccepting();
        var (answer, clientEnd) = await reading;
        Assert.Empty(answer);
        Assert.Equal(SocketError.Success, clientEnd);
        await WhenNoSessionsAsync(failed.Server, cancel.Token);
    }

    /// <summary>
    /// A server (idle timeout <paramref name="idle"/>) and a client whose first chunk (address header and 10 bytes)
    /// reached a destination socket of the test's own, then a chunk whose tag is wrong: returned once the destination
    /// has had the 10 bytes and then a reset.
    /// </summary>
    private static async Task<FailedStream> FailedStreamAsync(string method, TimeSpan idle, CancellationToken cancellationToken)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var options = RelayChain.Options(method, "mid-stream", new IPEndPoint(IPAddress.Loopback, 0)) with { IdleTimeout = idle };
        var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var failed = new FailedStream(server, listener, client);

        try
        {
            using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey, time: TimeProvider.System);
            await client.ConnectAsync(server.LocalEndPoint, cancellationToken);
            var header = StreamCodecKit.Header(ShadowsocksAddress.FromEndPoint((IPEndPoint)listener.LocalEndPoint!));
            await client.SendAsync(StreamCodecKit.Encrypt(encryptor, [.. header, .. "good bytes"u8]), SocketFlags.None, cancellationToken);
            using var destination = await listener.AcceptAsync(cancellationToken);
            var good = new byte[10];
            await Socks5TestClient.ReadExactlyAsync(destination, good, cancellationToken);
            Assert.Equal("good bytes"u8.ToArray(), good);

            var corrupted = StreamCodecKit.Encrypt(encryptor, "bad bytes"u8.ToArray());
            corrupted[^1] ^= 1; // the payload's tag
            await client.SendAsync(corrupted, SocketFlags.None, cancellationToken);

            var (rest, destinationEnd) = await ResetPropagationTests.ReadToTheEndAsync(destination, cancellationToken);
            Assert.Empty(rest);
            Assert.Equal(SocketError.ConnectionReset, destinationEnd);
            return failed;
        }
        catch
        {
            await failed.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits (bounded by the test's deadline) until the server counts no connection: it forgets one just after closing it.</summary>
    private static async Task WhenNoSessionsAsync(ServerTcpRelay server, CancellationToken cancellationToken)
    {
        while (server.ActiveSessions != 0)
        {
            await Task.Delay(20, cancellationToken);
        }
    }

    private sealed record FailedStream(ServerTcpRelay Server, Socket Listener, Socket Client) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            Listener.Dispose();
            await Server.DisposeAsync();
        }
    }
}
