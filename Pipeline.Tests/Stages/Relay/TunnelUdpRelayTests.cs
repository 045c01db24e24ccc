using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary><c>shadowsocks tunnel -u</c> as its clients meet it, through our server.</summary>
public sealed class TunnelUdpRelayTests
{
    private const string Method = "aes-256-gcm";

    /// <summary>
    /// The largest payload whose sealed datagram still fits in one UDP datagram (65,507): aes-256-gcm's salt (32) and
    /// tag (16) and the destination's IPv4 header (7) ride with it, both ways.
    /// </summary>
    private const int LargestPayload = 65_507 - 32 - 7 - 16;

    private static readonly TimeSpan s_deadline = TimeSpan.FromSeconds(30);

    /// <summary>
    /// An empty datagram is a datagram (keepalives, some game and VPN protocols send them), and a tunnel on <c>::</c>
    /// serves IPv4 clients as well as IPv6 ones (ss-tunnel's <c>-b ::</c> serves IPv6 only).
    /// </summary>
    [Fact]
    public async Task EmptyAndLargestDatagrams_ComeBackExact_ToIPv4AndIPv6ClientsOfATunnelOnTheAnyAddress()
    {
        using var cancel = new CancellationTokenSource(s_deadline);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var options = RelayChain.Options(Method, "tunnel-udp", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = UdpRelayChain.StartServer(options);
        await using var tunnel = new TunnelUdpRelay(options with { Server = server.LocalEndPoint, TunnelDestination = ShadowsocksAddress.FromEndPoint(echo.EndPoint) }, server.LocalEndPoint, ProgramScheduler.Instance);
        tunnel.Start(new IPEndPoint(IPAddress.IPv6Any, 0));

        foreach (var loopback in new[] { IPAddress.Loopback, IPAddress.IPv6Loopback })
        {
            using var client = new Socket(loopback.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            client.Bind(new IPEndPoint(loopback, 0));
            var to = new IPEndPoint(loopback, tunnel.LocalEndPoint.Port);
            foreach (var size in new[] { 0, 1400, LargestPayload })
            {
                var payload = RandomNumberGenerator.GetBytes(size);
                await client.SendToAsync(payload, SocketFlags.None, to, cancel.Token);
                var reply = new byte[65_536];
                var received = await client.ReceiveFromAsync(reply, SocketFlags.None, new IPEndPoint(loopback, 0), cancel.Token);
                Assert.Equal(to, received.RemoteEndPoint);
                Assert.Equal(payload, reply[..received.ReceivedBytes]);
            }
        }
    }

    /// <summary>Every client port has its own way through the server: each gets its own replies, none another's.</summary>
    [Fact]
    public async Task ManyClientPorts_EachGetsItsOwnReply()
    {
        using var cancel = new CancellationTokenSource(s_deadline);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var options = RelayChain.Options(Method, "tunnel-udp", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = UdpRelayChain.StartServer(options);
        await using var tunnel = new TunnelUdpRelay(options with { Server = server.LocalEndPoint, TunnelDestination = ShadowsocksAddress.FromEndPoint(echo.EndPoint) }, server.LocalEndPoint, ProgramScheduler.Instance);
        tunnel.Start(new IPEndPoint(IPAddress.Loopback, 0));

        var clients = Enumerable.Range(0, 64).Select(_ => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)).ToArray();
        try
        {
            foreach (var (client, i) in clients.Select((c, i) => (c, i)))
            {
                client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                await client.SendToAsync(BitConverter.GetBytes(i), SocketFlags.None, tunnel.LocalEndPoint, cancel.Token);
            }

            foreach (var (client, i) in clients.Select((c, i) => (c, i)))
            {
                var reply = new byte[64];
                var received = await client.ReceiveAsync(reply, SocketFlags.None, cancel.Token);
                Assert.Equal(BitConverter.GetBytes(i), reply[..received]);
            }

            Assert.Equal(clients.Length, tunnel.Associations);
        }
        finally
        {
            Array.ForEach(clients, static c => c.Dispose());
        }
    }
}
