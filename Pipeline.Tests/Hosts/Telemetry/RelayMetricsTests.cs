using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Hosts.Telemetry.PrometheusScrape;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Telemetry;

/// <summary>
/// The relay's metrics as an operator scrapes them from the real program (<c>--metrics</c>): bytes while a connection is
/// still open, exactly; UDP bytes by transport; accepts by role; refusals, authentication failures and destination
/// failures by a bounded reason or transport.
/// </summary>
public sealed class RelayMetricsTests
{
    private const string BytesTcpUp = "pipeline_bytes_relayed_bytes_total{network_transport=\"tcp\",pipeline_direction=\"relay.upstream\"}";
    private const string BytesTcpDown = "pipeline_bytes_relayed_bytes_total{network_transport=\"tcp\",pipeline_direction=\"relay.downstream\"}";
    private const string BytesUdpUp = "pipeline_bytes_relayed_bytes_total{network_transport=\"udp\",pipeline_direction=\"relay.upstream\"}";
    private const string BytesUdpDown = "pipeline_bytes_relayed_bytes_total{network_transport=\"udp\",pipeline_direction=\"relay.downstream\"}";

    [Fact]
    public async Task BytesRelayed_ConnectionStillOpen_CountsEachChunkAsSent_ExactlyEachWay_AndTheAccepts()
    {
        const int Size = 300_000; // many chunks each way
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        await using var destination = new EchoDestination();
        var serverMetrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var localMetrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        using var chain = await HostChain.StartAsync(new Dictionary<string, string>(), "live-bytes",
            serverArgs: ["--metrics", serverMetrics.ToString()], localArgs: ["--metrics", localMetrics.ToString()]);
        Assert.True(await chain.Server.WaitForOutputAsync($"metrics: http://{serverMetrics}/metrics", Deadline), chain.Server.Output);
        Assert.True(await chain.Local.WaitForOutputAsync($"metrics: http://{localMetrics}/metrics", Deadline), chain.Local.Output);
        using var http = new HttpClient { Timeout = Deadline };

        var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.LocalAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using (socket)
        {
            Assert.Equal(0, reply);
            var payload = RandomNumberGenerator.GetBytes(Size);
            var sending = socket.SendAsync(payload, SocketFlags.None, cancel.Token).AsTask();
            var echoed = new byte[Size];
            Assert.True(await Socks5TestClient.TryReadExactlyAsync(socket, echoed, cancel.Token), "the relay closed before the whole echo came back");
            Assert.Equal(Size, await sending);
            Assert.Equal(payload, echoed);

            // Still open: the plaintext each side sent on (the server toward the destination, the local toward its
            // client) is the payload, exactly; the ciphertext is the payload and its framing.
            var server = await UntilAsync(http, serverMetrics, t => Value(t, BytesTcpUp) >= Size, cancel.Token);
            var local = await UntilAsync(http, localMetrics, t => Value(t, BytesTcpDown) >= Size, cancel.Token);
            Assert.Equal(1, Value(server, "pipeline_active_connections{shadowsocks_role=\"server\"}")); // by role, as accepts are
            Assert.Equal(1, Value(local, "pipeline_active_connections{shadowsocks_role=\"local\"}"));
            Assert.Equal(Size, Value(server, BytesTcpUp));
            Assert.Equal(Size, Value(local, BytesTcpDown));
            Assert.Equal(1, Value(server, "pipeline_connections_accepted_total{shadowsocks_role=\"server\"}"));
            Assert.Equal(1, Value(local, "pipeline_connections_accepted_total{shadowsocks_role=\"local\"}"));
        }

        // Closed: nothing added again at the end of a direction.
        var serverAfter = await UntilAsync(http, serverMetrics, t => Value(t, "pipeline_active_connections{shadowsocks_role=\"server\"}") == 0, cancel.Token);
        var localAfter = await UntilAsync(http, localMetrics, t => Value(t, "pipeline_active_connections{shadowsocks_role=\"local\"}") == 0, cancel.Token);
        Assert.Equal(Size, Value(serverAfter, BytesTcpUp));
        Assert.Equal(Size, Value(localAfter, BytesTcpDown));
        Assert.InRange(Value(serverAfter, BytesTcpDown)!.Value, Size + 1, Size + (Size / 10));
        Assert.InRange(Value(localAfter, BytesTcpUp)!.Value, Size + 1, Size + (Size / 10));
        Assert.Equal(1, Value(serverAfter, "pipeline_connections_accepted_total{shadowsocks_role=\"server\"}"));
        Assert.Equal(1, Value(localAfter, "pipeline_connections_accepted_total{shadowsocks_role=\"local\"}"));
    }

    [Fact]
    public async Task BytesRelayed_Udp_CountsEachDatagramAsSent_ByTransport()
    {
        const int Datagrams = 3;
        const int Size = 100;
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var serverMetrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var localMetrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        using var chain = await HostChain.StartAsync(new Dictionary<string, string>(), "udp-bytes",
            serverArgs: ["-u", "--metrics", serverMetrics.ToString()], localArgs: ["-u", "--metrics", localMetrics.ToString()]);
        Assert.True(await chain.Server.WaitForOutputAsync($"metrics: http://{serverMetrics}/metrics", Deadline), chain.Server.Output);
        Assert.True(await chain.Local.WaitForOutputAsync($"metrics: http://{localMetrics}/metrics", Deadline), chain.Local.Output);
        using var http = new HttpClient { Timeout = Deadline };

        using (var association = await Socks5UdpTestClient.AssociateAsync(chain.LocalAt, cancel.Token))
        {
            for (var i = 0; i < Datagrams; i++)
            {
                var data = RandomNumberGenerator.GetBytes(Size);
                await association.SendAsync("127.0.0.1", echo.EndPoint.Port, data, cancel.Token);
                Assert.Equal(data, await association.ReceiveAsync(cancel.Token));
            }
        }

        // What each side sent, per datagram: the payload to the destination; it with its address (ATYP 1: 7 bytes),
        // salt (32) and tag (16) between the local and the server; it with its SOCKS5 header (10 bytes) to the client.
        const int Sealed = Size + 7 + 32 + 16;
        var server = await UntilAsync(http, serverMetrics, t => Value(t, BytesUdpUp) >= Datagrams * Size && Value(t, BytesUdpDown) >= Datagrams * Sealed, cancel.Token);
        var local = await UntilAsync(http, localMetrics, t => Value(t, BytesUdpUp) >= Datagrams * Sealed && Value(t, BytesUdpDown) >= Datagrams * (Size + 10), cancel.Token);
        Assert.Equal(Datagrams * Size, Value(server, BytesUdpUp));
        Assert.Equal(Datagrams * Sealed, Value(server, BytesUdpDown));
        Assert.Equal(Datagrams * Sealed, Value(local, BytesUdpUp));
        Assert.Equal(Datagrams * (Size + 10), Value(local, BytesUdpDown));
        Assert.Null(Value(server, BytesTcpUp)); // no TCP bytes: the association's control connection carries none

        // Datagrams received, by the same directions as the bytes: from the client, and the replies.
        Assert.Equal(Datagrams, Value(server, "pipeline_udp_datagrams_total{pipeline_direction=\"relay.upstream\"}"));
        Assert.Equal(Datagrams, Value(server, "pipeline_udp_datagrams_total{pipeline_direction=\"relay.downstream\"}"));
        Assert.Equal(Datagrams, Value(local, "pipeline_udp_datagrams_total{pipeline_direction=\"relay.upstream\"}"));
        Assert.Equal(Datagrams, Value(local, "pipeline_udp_datagrams_total{pipeline_direction=\"relay.downstream\"}"));
    }

    [Fact]
    public async Task Server_RefusedByAcl_AndProbesOverTcpAndUdp_CountedByReasonAndTransport()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var directory = Directory.CreateTempSubdirectory("ss-metrics-acl-");
        try
        {
            var acl = Path.Combine(directory.FullName, "server.acl");
            File.WriteAllText(acl, "[reject_all]\n[white_list]\n127.0.0.2\n");
            var metrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
            var (server, serverAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
                "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "metrics-acl", "-m", "aes-256-gcm", "--acl", acl, "--metrics", metrics.ToString());
            using var _ = server;
            Assert.True(await server.WaitForOutputAsync($"metrics: http://{metrics}/metrics", Deadline), server.Output);
            using var http = new HttpClient { Timeout = Deadline };

            // From 127.0.0.1: the ACL refuses it at the accept.
            using (var refused = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                await refused.ConnectAsync(serverAt, cancel.Token);
                await UntilAsync(http, metrics, t => Value(t, "pipeline_connections_refused_total{pipeline_reason=\"acl\"}") == 1, cancel.Token);
            }

            // From 127.0.0.2, admitted: a stream and a datagram under another key.
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
            await probe.ConnectAsync(serverAt, cancel.Token);
            await probe.SendAsync(RandomNumberGenerator.GetBytes(100), SocketFlags.None, cancel.Token);
            using (var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
            {
                udp.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
                await udp.SendToAsync(RandomNumberGenerator.GetBytes(100), SocketFlags.None, serverAt, cancel.Token);
            }

            var text = await UntilAsync(http, metrics, t =>
                Value(t, "pipeline_authentication_failures_total{network_transport=\"tcp\"}") == 1
                && Value(t, "pipeline_authentication_failures_total{network_transport=\"udp\"}") == 1, cancel.Token);
            Assert.Equal(2, Value(text, "pipeline_connections_accepted_total{shadowsocks_role=\"server\"}"));
            Assert.Equal(1, Value(text, "pipeline_connections_refused_total{pipeline_reason=\"acl\"}"));
            Assert.DoesNotContain("pipeline_connections_refused_total{pipeline_reason=\"capacity\"}", text, StringComparison.Ordinal);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Server_DestinationsItCannotReach_CountedByReason_NeverByName()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        using var dns = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], rcode: 3), false)])); // NXDOMAIN
        var metrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var environment = new Dictionary<string, string>();
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "metrics-destinations", "-m", "aes-256-gcm",
            "-d", $"127.0.0.1:{Port(dns.EndPoint)}", "--forbidden-ip", "127.0.0.3", "--metrics", metrics.ToString());
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-s", "127.0.0.1", "-p", Port(serverAt), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "metrics-destinations", "-m", "aes-256-gcm");
        using var __ = local;
        Assert.True(await server.WaitForOutputAsync($"metrics: http://{metrics}/metrics", Deadline), server.Output);
        using var http = new HttpClient { Timeout = Deadline };

        // Held open until counted: a client that went away first is no failure of the destination's.
        var closedPort = LoopbackPorts.Next(); // nothing listens there
        var connections = new List<Socket>();
        try
        {
            foreach (var (host, port) in new[] { ("missing.test", 80), ("127.0.0.3", 80), ("127.0.0.1", closedPort) })
            {
                connections.Add((await Socks5TestClient.ConnectAsync(localAt, host, port, cancel.Token)).Socket);
            }

            var text = await UntilAsync(http, metrics, t =>
                Value(t, "pipeline_destination_failures_total{pipeline_reason=\"lookup_failed\"}") == 1
                && Value(t, "pipeline_destination_failures_total{pipeline_reason=\"forbidden\"}") == 1
                && Value(t, "pipeline_destination_failures_total{pipeline_reason=\"refused\"}") == 1, cancel.Token);
            Assert.DoesNotContain("missing.test", text, StringComparison.Ordinal);
            Assert.DoesNotContain("127.0.0.3", text, StringComparison.Ordinal);
        }
        finally
        {
            connections.ForEach(static s => s.Dispose());
        }
    }

    [Fact]
    public async Task Local_AServerThatRefuses_CountedByBoundedReasonAndServer_TheWarningStillNamesTheError()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var closedPort = LoopbackPorts.Next(); // nothing listens there
        var metrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var (local, localAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
            "local", "-s", "127.0.0.1", "-p", Port(closedPort), "-l", Port(LoopbackPorts.Next()), "-k", "metrics-server-down", "-m", "aes-256-gcm",
            "--metrics", metrics.ToString());
        using var _ = local;
        Assert.True(await local.WaitForOutputAsync($"metrics: http://{metrics}/metrics", Deadline), local.Output);
        using var http = new HttpClient { Timeout = Deadline };

        for (var i = 0; i < 2; i++)
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", 9, cancel.Token);
            socket.Dispose();
            Assert.Equal(5, reply); // connection refused
        }

        var series = $"pipeline_server_connect_failures_total{{pipeline_reason=\"refused\",server_address=\"127.0.0.1:{closedPort}\"}}";
        var text = await UntilAsync(http, metrics, t => Value(t, series) == 2, cancel.Token);
        Assert.DoesNotContain("ConnectionRefused", text, StringComparison.Ordinal); // the error's text is the log line's, not a label
        Assert.True(await local.WaitForOutputAsync($"cannot connect to server 127.0.0.1:{closedPort}: ConnectionRefused: check the server's address and port", Deadline), local.Output);
    }

    [Fact]
    public async Task BytesRelayed_Udp_OnAMultiUserServer_CountedByUser_AsTcpIs()
    {
        const int Size = 100;
        const string Method = "2022-blake3-aes-256-gcm";
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var (identity, alice) = (Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
        var metrics = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var config = Path.GetTempFileName();
        File.WriteAllText(config, $$"""
            { "server": "127.0.0.1", "server_port": {{LoopbackPorts.Next()}}, "method": "{{Method}}", "password": "{{identity}}",
              "mode": "tcp_and_udp", "forbidden_ip": "", "users": [ { "name": "alice", "password": "{{alice}}" } ] }
            """);
        try
        {
            var none = new Dictionary<string, string>();
            var (server, serverAt) = await HostProcess.StartAsync(none, "server", "-c", config, "--metrics", metrics.ToString());
            using var _ = server;
            var (local, localAt) = await HostProcess.StartAsync(none,
                "local", "-s", "127.0.0.1", "-p", Port(serverAt), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-m", Method, "-k", $"{identity}:{alice}", "-u");
            using var __ = local;
            Assert.True(await server.WaitForOutputAsync($"metrics: http://{metrics}/metrics", Deadline), server.Output);
            using var http = new HttpClient { Timeout = Deadline };

            using (var association = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token))
            {
                var data = RandomNumberGenerator.GetBytes(Size);
                await association.SendAsync("127.0.0.1", echo.EndPoint.Port, data, cancel.Token);
                Assert.Equal(data, await association.ReceiveAsync(cancel.Token));
            }

            // The plaintext toward the destination, exactly; the sealed reply toward the client, under the same user.
            var up = "pipeline_bytes_relayed_bytes_total{network_transport=\"udp\",pipeline_direction=\"relay.upstream\",user_name=\"alice\"}";
            var down = "pipeline_bytes_relayed_bytes_total{network_transport=\"udp\",pipeline_direction=\"relay.downstream\",user_name=\"alice\"}";
            var text = await UntilAsync(http, metrics, t => Value(t, up) == Size && Value(t, down) > Size, cancel.Token);
            Assert.Null(Value(text, BytesUdpUp)); // none counted without the user
            Assert.Null(Value(text, BytesUdpDown));
        }
        finally
        {
            File.Delete(config);
        }
    }
}
