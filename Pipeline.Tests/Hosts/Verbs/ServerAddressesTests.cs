using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// A server given several addresses, as Debian's ss-libev config does (<c>"server": ["::1", "127.0.0.1"]</c>): it
/// listens on each, TCP and UDP (only the first was listened on), with one replay filter across them.
/// </summary>
public sealed class ServerAddressesTests : IDisposable
{
    private const string Password = "two-addresses";
    private readonly string _config = Path.Combine(Path.GetTempPath(), $"ss-addresses-{Guid.NewGuid():N}.json");

    public void Dispose() => File.Delete(_config);

    [Fact]
    public async Task ConfigWithTwoAddresses_ServesBoth_TcpAndUdp_AndAReplayOnTheOtherIsCaught()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        await using var destination = new EchoDestination();
        using var udpEcho = new UdpEchoDestination(IPAddress.Loopback);
        var port = LoopbackPorts.Next();
        File.WriteAllText(_config, $$"""
            { "server": ["::1", "127.0.0.1"], "server_port": {{port}}, "password": "{{Password}}", "method": "aes-256-gcm",
              "mode": "tcp_and_udp", "forbidden_ip": "" }
            """);
        var environment = new Dictionary<string, string>();
        var (server, _) = await HostProcess.StartAsync(environment, "server", "-c", _config);
        using var _ = server;
        Assert.Contains($"listening on [::1]:{port} and 127.0.0.1:{port} tcp and udp", server.Output);

        foreach (var address in new[] { "::1", "127.0.0.1" })
        {
            var (local, localAt) = await HostProcess.StartAsync(environment,
                "local", "-u", "-s", address, "-p", Port(port), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", "aes-256-gcm");
            using var __ = local;
            await Transfer.EchoThroughSocks5Async(localAt, destination.EndPoint.Port, 1, 32 * 1024, cancel.Token);
            using var association = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
            var payload = RandomNumberGenerator.GetBytes(400);
            await association.SendAsync("127.0.0.1", udpEcho.EndPoint.Port, payload, cancel.Token);
            Assert.Equal(payload, await association.ReceiveAsync(cancel.Token));
        }

        // A first packet recorded on one address and replayed on the other never reaches the destination again.
        Assert.True(CipherCatalog.TryGet("aes-256-gcm", out var cipher));
        var target = ShadowsocksAddress.FromEndPoint(destination.EndPoint);
        var plain = new byte[AddressHeader.GetSize(target) + 100];
        RandomNumberGenerator.Fill(plain.AsSpan(AddressHeader.Write(target, plain)));
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, KeyDerivation.MasterKeyFromPassword(cipher, Password));
        var recording = new byte[encryptor.MaxOutputSize(plain.Length)];
        recording = recording[..encryptor.Encrypt(plain, recording)];
        var accepted = destination.Accepted;
        using (var original = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await original.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancel.Token);
            await original.SendAsync(recording, SocketFlags.None, cancel.Token);
            Assert.True(await original.ReceiveAsync(new byte[64], SocketFlags.None, cancel.Token) > 0);
        }

        using var replay = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        await replay.ConnectAsync(new IPEndPoint(IPAddress.IPv6Loopback, port), cancel.Token);
        await replay.SendAsync(recording, SocketFlags.None, cancel.Token);
        using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(700));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await replay.ReceiveAsync(new byte[64], SocketFlags.None, quiet.Token));
        Assert.Equal(accepted + 1, destination.Accepted);
    }

    /// <summary>
    /// ss-libev's manual gives <c>"server": ["::0", "0.0.0.0"]</c> to listen on IPv6 and IPv4: <c>::</c> must then take
    /// IPv6 only, as ss-server binds it, or the second bind fails ("address already in use", as it did).
    /// </summary>
    [Fact]
    public async Task ConfigWithAnyV6AndAnyV4_AsSsLibevsManualGivesIt_ServesBothFamilies()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        await using var destination = new EchoDestination();
        using var udpEcho = new UdpEchoDestination(IPAddress.Loopback);
        var port = LoopbackPorts.Next();
        File.WriteAllText(_config, $$"""
            { "server": ["::0", "0.0.0.0"], "server_port": {{port}}, "password": "{{Password}}", "method": "aes-256-gcm",
              "mode": "tcp_and_udp", "forbidden_ip": "" }
            """);
        var environment = new Dictionary<string, string>();
        var (server, _) = await HostProcess.StartAsync(environment, "server", "-c", _config);
        using var _ = server;
        Assert.Contains($"listening on [::]:{port} and 0.0.0.0:{port} tcp and udp", server.Output);

        foreach (var address in new[] { "::1", "127.0.0.1" })
        {
            var (local, localAt) = await HostProcess.StartAsync(environment,
                "local", "-u", "-s", address, "-p", Port(port), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", "aes-256-gcm");
            using var __ = local;
            await Transfer.EchoThroughSocks5Async(localAt, destination.EndPoint.Port, 1, 4 * 1024, cancel.Token);
            using var association = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
            var payload = RandomNumberGenerator.GetBytes(200);
            await association.SendAsync("127.0.0.1", udpEcho.EndPoint.Port, payload, cancel.Token);
            Assert.Equal(payload, await association.ReceiveAsync(cancel.Token));
        }
    }

    /// <summary>
    /// A server on two addresses whose second is taken stops with a line naming that one (it named the first, which it
    /// could have listened on: with <c>["::0", "0.0.0.0"]</c> and an old IPv4 server still running, it said <c>[::]</c>).
    /// </summary>
    [Fact]
    public async Task SecondAddressTaken_TheLineNamesIt()
    {
        var port = LoopbackPorts.Next();
        using var taken = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.IPv6Loopback, port));
        taken.Listen();

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30)); // ends it if it did start
        var error = new StringWriter();
        var exitCode = await Program.RunAsync(
            ["server", "-s", "127.0.0.1", "-s", "::1", "-p", Port(port), "-k", Password, "-m", "aes-256-gcm"], new StringWriter(), error, stop.Token);

        Assert.Equal(1, exitCode);
        Assert.StartsWith($"shadowsocks: cannot listen on [::1]:{port}: address already in use", error.ToString());
    }

    /// <summary>With <c>-u</c>, a UDP port taken by another program (TCP free) is said as UDP's.</summary>
    [Fact]
    public async Task UdpPortTaken_TheLineSaysUdp()
    {
        var port = LoopbackPorts.Next();
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, port));

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var error = new StringWriter();
        var exitCode = await Program.RunAsync(
            ["server", "-u", "-s", "127.0.0.1", "-p", Port(port), "-k", Password, "-m", "aes-256-gcm"], new StringWriter(), error, stop.Token);

        Assert.Equal(1, exitCode);
        Assert.StartsWith($"shadowsocks: cannot listen on 127.0.0.1:{port} (udp): address already in use", error.ToString());
    }
}
