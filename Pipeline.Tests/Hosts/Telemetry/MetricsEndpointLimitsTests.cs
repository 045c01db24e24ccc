using System.Net;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Hosts.Telemetry;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Hosts.Telemetry;

/// <summary>
/// <see cref="MetricsEndpoint"/>'s limits on real loopback sockets, its clock a manual one: clients that send no whole
/// request hold at most its 8 places and are closed at the request timeout (10 s), a ninth is closed at accept, and a head
/// longer than 8 KiB gets 431.
/// </summary>
public sealed class MetricsEndpointLimitsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task StalledClients_HoldAtMostEightPlaces_AndAreClosedAtTheRequestTimeout()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var time = new ManualTimeProvider();
        var (endpoint, error) = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), () => "up 1\n", time);
        Assert.Null(error);
        await using var _ = endpoint;

        var stalled = new List<Socket>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                stalled.Add(client);
                await client.ConnectAsync(endpoint!.LocalEndPoint, cancel.Token);
                await client.SendAsync("GET /metr"u8.ToArray(), SocketFlags.None, cancel.Token); // and nothing more
            }

            // Accepted after the eight (one listen queue, in order), and closed at once: no place left.
            using (var ninth = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                await ninth.ConnectAsync(endpoint!.LocalEndPoint, cancel.Token);
                Assert.Equal("", await ReadToEndAsync(ninth, cancel.Token));
            }

            // The request timeout passes: each stalled client is closed without an answer, and the places are free.
            time.Advance(TimeSpan.FromSeconds(10));
            foreach (var client in stalled)
            {
                Assert.Equal("", await ReadToEndAsync(client, cancel.Token));
            }

            var answer = await ExchangeAsync(endpoint!.LocalEndPoint, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), cancel.Token);
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
            Assert.EndsWith("\r\n\r\nup 1\n", answer, StringComparison.Ordinal);
        }
        finally
        {
            stalled.ForEach(static s => s.Dispose());
        }
    }

    [Fact]
    public async Task AHeadLongerThan8KiB_Gets431()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var (endpoint, _) = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), () => "up 1\n", TimeProvider.System);
        await using var __ = endpoint;
        var head = Encoding.ASCII.GetBytes($"GET /metrics HTTP/1.1\r\nX-Long: {new string('a', 9000)}\r\n\r\n");
        var answer = await ExchangeAsync(endpoint!.LocalEndPoint, head, cancel.Token);
        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n", answer, StringComparison.Ordinal);
    }

    private static async Task<string> ExchangeAsync(IPEndPoint at, byte[] request, CancellationToken cancellationToken)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(at, cancellationToken);
        await client.SendAsync(request, SocketFlags.None, cancellationToken);
        client.Shutdown(SocketShutdown.Send);
        return await ReadToEndAsync(client, cancellationToken);
    }

    /// <summary>What the endpoint sends until it closes (a reset counts as the close).</summary>
    private static async Task<string> ReadToEndAsync(Socket client, CancellationToken cancellationToken)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            while (await client.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).AsTask().WaitAsync(Deadline, cancellationToken) is var read and > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }

        return Encoding.UTF8.GetString(received.ToArray());
    }
}
