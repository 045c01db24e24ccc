using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// The real program as a multi-user 2022 server (SIP023) from a config file, TCP and UDP, and the real program as each
/// user's local (<c>-k iPSK:uPSK</c>): every user's TCP and UDP traffic goes through (the server builds one table of
/// users for all its relays), and a key that is not on the list gets nothing through.
/// </summary>
public sealed class MultiUserServerTests
{
    private const string Method = "2022-blake3-aes-256-gcm";

    [Fact]
    public async Task EachUser_GetsThroughOverTcpAndUdp_AndAStrangerDoesNot()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var (identity, alice, bob, stranger) = (Key(), Key(), Key(), Key());
        var config = Path.GetTempFileName();
        File.WriteAllText(config, $$"""
            { "server": "127.0.0.1", "server_port": {{LoopbackPorts.Next()}}, "method": "{{Method}}", "password": "{{identity}}",
              "mode": "tcp_and_udp", "forbidden_ip": "",
              "users": [ { "name": "alice", "password": "{{alice}}" }, { "name": "bob", "password": "{{bob}}" } ] }
            """);
        try
        {
            var none = new Dictionary<string, string>();
            var (server, serverAt) = await HostProcess.StartAsync(none, "server", "-c", config);
            using var _ = server;
            await using var echo = new EchoDestination();
            using var udpEcho = new UdpEchoDestination(IPAddress.Loopback);

            foreach (var user in new[] { alice, bob })
            {
                var (local, localAt) = await StartLocalAsync(serverAt, $"{identity}:{user}");
                using var __ = local;
                await Transfer.EchoThroughSocks5Async(localAt, echo.EndPoint.Port, 1, 64 << 10, cancel.Token);
                using var udp = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
                var datagram = RandomNumberGenerator.GetBytes(1200);
                await udp.SendAsync("127.0.0.1", udpEcho.EndPoint.Port, datagram, cancel.Token);
                Assert.Equal(datagram, await udp.ReceiveAsync(cancel.Token));
            }

            var accepted = echo.Accepted;
            var (strangerLocal, strangerAt) = await StartLocalAsync(serverAt, $"{identity}:{stranger}");
            using (strangerLocal)
            {
                var (socket, reply) = await Socks5TestClient.ConnectAsync(strangerAt, "127.0.0.1", echo.EndPoint.Port, cancel.Token);
                using var ___ = socket;
                Assert.Equal(0, reply); // the local answers for itself; the server never answers a key it does not know
                await socket.SendAsync("anyone there?"u8.ToArray(), SocketFlags.None, cancel.Token);
                using var quiet = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token);
                quiet.CancelAfter(TimeSpan.FromMilliseconds(700));
                await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await socket.ReceiveAsync(new byte[16], SocketFlags.None, quiet.Token));

                using var udp = await Socks5UdpTestClient.AssociateAsync(strangerAt, cancel.Token);
                var before = udpEcho.Received;
                await udp.SendAsync("127.0.0.1", udpEcho.EndPoint.Port, "anyone?"u8, cancel.Token);
                await Task.Delay(500, cancel.Token);
                Assert.Equal(before, udpEcho.Received);
            }

            Assert.Equal(accepted, echo.Accepted);
        }
        finally
        {
            File.Delete(config);
        }
    }

    private static Task<(HostProcess Host, IPEndPoint Listening)> StartLocalAsync(IPEndPoint server, string key) =>
        HostProcess.StartAsync(new Dictionary<string, string>(),
            "local", "-s", "127.0.0.1", "-p", Port(server), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-m", Method, "-k", key, "-u");

    private static string Key() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
}
