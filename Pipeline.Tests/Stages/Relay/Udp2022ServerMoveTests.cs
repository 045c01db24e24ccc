using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connect;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Stages.Udp;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Connect;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A local's and a tunnel's UDP with a SIP022 method, following TCP's circuits between two of our servers, A and B:
/// away from A to B, then back to A restarted (a new server session for the client's session).
/// </summary>
/// <remarks>
/// The client's sessions went on across a move: back at A, A's new server session was the third the client session
/// saw while the first (A's before the restart) had been heard within the minute, and SIP022 § 3.2.4 refuses it. Every
/// reply from A was dropped as replayed, for up to a minute.
/// </remarks>
public sealed class Udp2022ServerMoveTests
{
    private const string Method = "2022-blake3-aes-256-gcm";
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Local_BackToARestartedServer_IsAnsweredThroughIt()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var servers = TwoServers.Start();
        var (udp, tcp) = UdpRelayChain.StartLocal(Options(servers.A), servers.Address);
        await using var localUdp = udp;
        await using var localTcp = tcp;
        using var client = await Socks5UdpTestClient.AssociateAsync(tcp.LocalEndPoint, cancel.Token);

        async Task<bool> EchoesAsync()
        {
            var payload = RandomNumberGenerator.GetBytes(100);
            for (var attempt = 0; attempt < 3; attempt++) // a datagram during a move may be lost: a few, each given a few seconds
            {
                await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
                if (await client.TryReceiveAsync(TimeSpan.FromSeconds(3)) is { } reply)
                {
                    Assert.Equal(payload, reply);
                    return true;
                }
            }

            return false;
        }

        await servers.MoveAwayAndBackAsync(EchoesAsync);
    }

    [Fact]
    public async Task Tunnel_BackToARestartedServer_IsAnsweredThroughIt()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var servers = TwoServers.Start();
        await using var tunnel = new TunnelUdpRelay(
            Options(servers.A) with { TunnelDestination = ShadowsocksAddress.FromEndPoint(echo.EndPoint) }, servers.Address, ProgramScheduler.Instance);
        tunnel.Start(new IPEndPoint(IPAddress.Loopback, 0));
        using var app = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        app.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        async Task<bool> EchoesAsync()
        {
            var payload = RandomNumberGenerator.GetBytes(100);
            var buffer = new byte[65_536];
            for (var attempt = 0; attempt < 3; attempt++)
            {
                await app.SendToAsync(payload, SocketFlags.None, tunnel.LocalEndPoint, cancel.Token);
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                try
                {
                    var result = await app.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), wait.Token);
                    Assert.Equal(payload, buffer[..result.ReceivedBytes]);
                    return true;
                }
                catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                {
                    // Not answered: again.
                }
            }

            return false;
        }

        await servers.MoveAwayAndBackAsync(EchoesAsync);
    }

    private static RelayOptions Options(IPEndPoint? server = null) =>
        RelayChain.Options(Method, "udp-2022-move-password", new IPEndPoint(IPAddress.Loopback, 0), server);

    /// <summary>
    /// Our servers A and B (UDP), the client's <see cref="UdpServerAddress"/> over them following a failover of its own
    /// on a manual clock (its connections reach no socket: they only open and close the circuits).
    /// </summary>
    private sealed class TwoServers : IAsyncDisposable
    {
        private readonly ManualTimeProvider _time = new();
        private readonly ServerFailover _failover;
        private ServerUdpRelay _a;
        private bool _aAnswers = true;

        private TwoServers(ServerUdpRelay a, ServerUdpRelay b)
        {
            _a = a;
            B = b;
            A = a.LocalEndPoint;
            _failover = new ServerFailover([A, b.LocalEndPoint], TimeSpan.FromSeconds(10), retries: 0, _time); // retries off: their delays would wait on the clock
            Address = new UdpServerAddress([A, b.LocalEndPoint], 0, A, null, _time);
            Address.Follow(_failover);
        }

        public IPEndPoint A { get; }

        public ServerUdpRelay B { get; }

        public UdpServerAddress Address { get; }

        public static TwoServers Start() => new(UdpRelayChain.StartServer(Options()), UdpRelayChain.StartServer(Options()));

        /// <summary>
        /// Through A; A skipped: through B; A restarted on its port and answering again: through A, each echo asked of
        /// <paramref name="echoes"/> answered, and the servers' sessions showing where each went.
        /// </summary>
        public async Task MoveAwayAndBackAsync(Func<Task<bool>> echoes)
        {
            Assert.True(await echoes(), "no echo through A");
            Assert.Equal(1, _a.Associations);

            _aAnswers = false;
            for (var i = 0; i < 2; i++) // two refusals open A's circuit
            {
                await FailoverConnections.ConnectAsync(_failover, s => !s.Equals(A) || _aAnswers);
            }

            Assert.Equal(B.LocalEndPoint, Address.Address);
            Assert.True(await echoes(), "no echo through B");
            Assert.Equal(1, B.Associations);

            await _a.DisposeAsync();
            _a = UdpRelayChain.StartServer(Options(), listen: A); // a new process there: none of the client's sessions known
            _time.Advance(ServerFailover.BreakDuration + TimeSpan.FromSeconds(1)); // the next connection tries A again
            _aAnswers = true;
            await FailoverConnections.ConnectAsync(_failover, s => !s.Equals(A) || _aAnswers);

            Assert.Equal(A, Address.Address);
            Assert.True(await echoes(), "no echo through A once back to it");
            Assert.Equal(1, _a.Associations);
        }

        public async ValueTask DisposeAsync()
        {
            await _a.DisposeAsync();
            await B.DisposeAsync();
        }
    }
}
