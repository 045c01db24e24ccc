using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Udp;

/// <summary>
/// The server's resolve stage: a lookup that takes long (a name whose servers do not answer: up to the resolver's
/// total timeout, 8 s by default) holds only the datagrams that wait for it. A datagram to an address, from another
/// client, needs no lookup and goes out at once; the lookups in flight stay within <c>pipeline.udp.max_parallelism</c>.
/// </summary>
public sealed class UdpResolveStageTests
{
    private const int SlowNames = 8;

    [Fact]
    public async Task LookupsThatHang_DoNotHoldBackOtherClientsDatagramsToAddresses()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var run = Guid.NewGuid().ToString("N")[..8];
        var options = RelayChain.Options("aes-256-gcm", "resolve", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Forbidden = ForbiddenAddresses.None,
            Pipeline = PipelineOptions.Default with { Udp = new StageOptions(2, 1024) }, // this machine's default: two cores
        };
        var resolver = new GatedResolver();
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var server = new ServerUdpRelay(options, resolver, ProgramScheduler.Instance);
        server.Start(new IPEndPoint(IPAddress.Loopback, 0));
        using var slow = Client();
        using var other = Client();

        for (var i = 0; i < SlowNames; i++)
        {
            slow.SendTo(UdpPackets.Seal(options, ShadowsocksAddress.FromHost($"slow{i}.{run}.test", echo.EndPoint.Port), [(byte)i]), server.LocalEndPoint);
        }

        while (resolver.Calls < 2)
        {
            await Task.Delay(10, cancel.Token);
        }

        other.SendTo(UdpPackets.Seal(options, ShadowsocksAddress.FromEndPoint(echo.EndPoint), "direct"u8), server.LocalEndPoint);
        // Generous: the held lookups never end by themselves, so a longer wait tells the same, and a loaded machine can
        // take seconds to relay a datagram.
        var reply = await DatagramsFrom.TryReceiveAsync(other, server.LocalEndPoint, TimeSpan.FromSeconds(10));
        var answeredWhileLookupsHung = reply is not null;
        var maxInFlightBeforeOpen = resolver.MaxInFlight;

        resolver.Open();
        var echoed = new SortedSet<int>();
        var buffer = new byte[2048];
        while (echoed.Count < SlowNames)
        {
            var received = await slow.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            echoed.Add(Assert.Single(UdpPackets.Open(options, buffer.AsSpan(0, received)).Payload));
        }

        Assert.True(answeredWhileLookupsHung, "a datagram to an address waited behind other clients' lookups");
        Assert.Equal("direct"u8.ToArray(), UdpPackets.Open(options, reply).Payload);
        Assert.Equal(2, maxInFlightBeforeOpen);
        Assert.Equal(2, resolver.MaxInFlight);
        Assert.Equal(SlowNames, resolver.Calls);
    }

    /// <summary>
    /// A name with an IPv4 and an IPv6 address goes to the one it can reach: the IPv6 address when the IPv4 one is
    /// forbidden, or when the outbound sockets leave from an IPv6 source (<c>-b ::1</c>). The datagram went to the first
    /// address and was dropped, where a TCP connection to the name skips it and reaches the next.
    /// </summary>
    [Theory]
    [InlineData("127.0.0.0/8", null)]
    [InlineData("", "::1")]
    public async Task ANameWithBothFamilies_GoesToTheAddressItCanReach(string forbidden, string? source)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var hosts = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(hosts, ["127.0.0.1 both.test", "::1 both.test"]);
            Assert.True(ForbiddenAddresses.TryParse(forbidden, out var refused, out var error), error);
            var options = RelayChain.Options("aes-256-gcm", "resolve", new IPEndPoint(IPAddress.Loopback, 0)) with
            {
                Forbidden = refused,
                OutboundAddress = source is null ? null : IPAddress.Parse(source),
            };
            using var resolver = new DnsResolver(new DnsResolverOptions { Servers = [], HostsPath = hosts }, ProgramScheduler.Instance, TimeProvider.System);
            using var echo = new UdpEchoDestination(IPAddress.IPv6Loopback);
            await using var server = new ServerUdpRelay(options, resolver, ProgramScheduler.Instance);
            server.Start(new IPEndPoint(IPAddress.Loopback, 0));
            using var client = Client();

            client.SendTo(UdpPackets.Seal(options, ShadowsocksAddress.FromHost("both.test", echo.EndPoint.Port), "both"u8), server.LocalEndPoint);
            var reply = await DatagramsFrom.TryReceiveAsync(client, server.LocalEndPoint, TimeSpan.FromSeconds(30));

            Assert.NotNull(reply);
            var (from, payload, _) = UdpPackets.Open(options, reply);
            Assert.Equal(IPAddress.IPv6Loopback, from.Ip);
            Assert.Equal("both"u8.ToArray(), payload);
        }
        finally
        {
            File.Delete(hosts);
        }
    }

    private static Socket Client()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }
}
