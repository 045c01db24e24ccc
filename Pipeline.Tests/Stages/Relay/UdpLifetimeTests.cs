using System.Net;
using System.Net.Sockets;
using Microsoft.Reactive.Testing;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

[CollectionDefinition(nameof(FileDescriptorCollection), DisableParallelization = true)]
public sealed class FileDescriptorCollection;

/// <summary>
/// NAT entries in virtual time: they expire exactly udp_timeout after their last datagram and close their sockets;
/// after 1,000 associations come and go the process's descriptors are back where they started. Runs alone: other
/// tests' sockets would move the descriptor count.
/// </summary>
[Collection(nameof(FileDescriptorCollection))]
public sealed class UdpLifetimeTests
{
    private static readonly TimeSpan s_udpTimeout = TimeSpan.FromSeconds(300);

    [Fact]
    public async Task NatEntryExpiresOnTime_BusyEntryStays()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var scheduler = new TestScheduler();
        var options = RelayChain.Options("aes-256-gcm", "lifetime", new IPEndPoint(IPAddress.Loopback, 0)) with { UdpTimeout = s_udpTimeout };
        await using var server = UdpRelayChain.StartServer(options, scheduler);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        await EchoAsync(client, server.LocalEndPoint, options, echo.EndPoint, cancel.Token);
        Assert.Equal(1, server.Associations);
        var outbound = OpenUdpSockets();

        // Busy: a datagram every 200 s keeps the entry for 1,000 s (well past one timeout).
        for (var i = 0; i < 5; i++)
        {
            scheduler.AdvanceBy(TimeSpan.FromSeconds(200).Ticks);
            await EchoAsync(client, server.LocalEndPoint, options, echo.EndPoint, cancel.Token);
            Assert.Equal(1, server.Associations);
        }

        // Idle: gone exactly one timeout after the last datagram (the reply counts as use too), socket closed.
        scheduler.AdvanceBy(s_udpTimeout.Ticks - 1);
        Assert.Equal(1, server.Associations);
        scheduler.AdvanceBy(1);
        Assert.Equal(0, server.Associations);
        Assert.Equal(outbound - 1, OpenUdpSockets());
    }

    [Fact]
    public async Task ThousandAssociations_ComeAndExpire_DescriptorsBackToBaseline()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var scheduler = new TestScheduler();
        var options = RelayChain.Options("chacha20-ietf-poly1305", "lifetime", new IPEndPoint(IPAddress.Loopback, 0)) with { UdpTimeout = s_udpTimeout };
        await using var server = UdpRelayChain.StartServer(options, scheduler);

        // Warm up once (thread pool, epoll registration) so the baseline is the steady state.
        using (var warm = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            warm.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            await EchoAsync(warm, server.LocalEndPoint, options, echo.EndPoint, cancel.Token);
        }

        scheduler.AdvanceBy(s_udpTimeout.Ticks);
        Assert.Equal(0, server.Associations);
        var baseline = Directory.GetFiles("/proc/self/fd").Length;

        // All 1,000 client sockets stay open until the end, so no client port (NAT key) is reused.
        var all = new List<Socket>();
        for (var batch = 0; batch < 10; batch++)
        {
            var clients = Enumerable.Range(0, 100).Select(_ =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                return s;
            }).ToList();
            await Task.WhenAll(clients.Select(c => EchoAsync(c, server.LocalEndPoint, options, echo.EndPoint, cancel.Token)));
            all.AddRange(clients);
        }

        all.ForEach(c => c.Dispose());

        Assert.Equal(1000, server.Associations);
        scheduler.AdvanceBy(s_udpTimeout.Ticks);
        Assert.Equal(0, server.Associations);
        var after = Directory.GetFiles("/proc/self/fd").Length;
        Assert.True(after <= baseline, $"descriptors: {baseline} before, {after} after 1,000 associations expired");
    }

    private static int OpenUdpSockets() =>
        File.ReadAllLines("/proc/self/net/udp").Length + File.ReadAllLines("/proc/self/net/udp6").Length;

    private static async Task EchoAsync(Socket client, IPEndPoint server, RelayOptions options, IPEndPoint target, CancellationToken cancellationToken)
    {
        var packet = UdpPackets.Seal(options, ShadowsocksAddress.FromEndPoint(target), "ping"u8);
        await client.SendToAsync(packet, SocketFlags.None, server, cancellationToken);
        var reply = new byte[2048];
        var received = await client.ReceiveAsync(reply, SocketFlags.None, cancellationToken);
        Assert.Equal("ping"u8.ToArray(), UdpPackets.Open(options, reply.AsSpan(0, received)).Payload);
    }
}
