using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// SIP003 plugins with real ones, simple-obfs (Debian's <c>simple-obfs</c>: <c>obfs-local</c>, <c>obfs-server</c>) and
/// v2ray-plugin (<c>shadowsocks-v2ray-plugin</c>: <c>ss-v2ray-plugin</c>; .ci/run installs both), against
/// shadowsocks-libev and ourselves. A <see cref="TcpTap"/> on the public side shows what
/// the path sees: HTTP requests, not Shadowsocks.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PluginTests
{
    private const string Password = "plugin-test";
    private const string Method = "aes-256-gcm";
    private static readonly Dictionary<string, string> s_environment = [];

    [Fact]
    public async Task OursLocal_ThroughObfsLocal_ToLibevServerBehindObfsServer_Relays_WithHttpOnTheWire()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", Method,
            "--plugin", "obfs-server", "--plugin-opts", "obfs=http");
        await using var tap = new TcpTap(server.EndPoint);
        var (local, localAt) = await HostProcess.StartAsync(s_environment,
            "local", "-s", "127.0.0.1", "-p", Port(tap.EndPoint), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method,
            "--plugin", "obfs-local", "--plugin-opts", "obfs=http;obfs-host=example.com");
        using var _ = local;
        Assert.Contains("plugin obfs-local", local.Output);

        await EchoAsync(localAt, destination, cancel.Token);
        AssertHttpOnTheWire(tap);
    }

    [Fact]
    public async Task LibevLocal_ThroughObfsLocal_ToOursBehindObfsServer_Relays_AndThePluginHasThePublicPort()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var port = LoopbackPorts.Next();
        var (server, serverAt) = await HostProcess.StartAsync(s_environment,
            "server", "-s", "127.0.0.1", "-p", Port(port), "-k", Password, "-m", Method, "--forbidden-ip", "",
            "--plugin", "obfs-server", "--plugin-opts", "obfs=http");
        using var _ = server;
        Assert.Equal(port, serverAt.Port);

        // SIP003's hand-over: the plugin listens on the public address and reaches us on a loopback port of ours.
        var plugin = Assert.Single(ProcessTree.Children(server.Id));
        Assert.Equal("obfs-server", File.ReadAllText($"/proc/{plugin}/comm").Trim());
        var environment = ProcessTree.Environment(plugin);
        Assert.Equal("127.0.0.1", environment["SS_REMOTE_HOST"]);
        Assert.Equal(Port(port), environment["SS_REMOTE_PORT"]);
        Assert.Equal("127.0.0.1", environment["SS_LOCAL_HOST"]);
        Assert.NotEqual(Port(port), environment["SS_LOCAL_PORT"]);
        Assert.Equal("obfs=http", environment["SS_PLUGIN_OPTIONS"]);

        await using var tap = new TcpTap(serverAt);
        await using var local = await LibevPeer.StartAsync("ss-local", "-s", "127.0.0.1", "-p", Port(tap.EndPoint), "-k", Password, "-m", Method,
            "--plugin", "obfs-local", "--plugin-opts", "obfs=http;obfs-host=example.com");
        await EchoAsync(local.EndPoint, destination, cancel.Token);
        AssertHttpOnTheWire(tap);
    }

    [Fact]
    public async Task OursLocal_ThroughV2rayPlugin_ToLibevServerBehindIt_Relays_OverAWebSocket()
    {
        // Debian's shadowsocks-v2ray-plugin (.ci/run installs it): a Go plugin that logs every connection.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", Method,
            "--plugin", "ss-v2ray-plugin", "--plugin-opts", "server;host=example.com");
        await using var tap = new TcpTap(server.EndPoint);
        var (local, localAt) = await HostProcess.StartAsync(s_environment,
            "local", "-s", "127.0.0.1", "-p", Port(tap.EndPoint), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method,
            "--plugin", "ss-v2ray-plugin", "--plugin-opts", "host=example.com");
        using var _ = local;

        await EchoAsync(localAt, destination, cancel.Token);
        var opening = Encoding.ASCII.GetString(Assert.Single(tap.Openings, o => o.Length > 0));
        Assert.StartsWith("GET /", opening);
        Assert.Contains("Upgrade: websocket", opening);
        Assert.Contains("accepted", local.Output); // its log lines come out on ours
    }

    [Fact]
    public async Task OursOnBothSides_TcpGoesThroughThePlugins_UdpStraightToTheServer()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        using var udpEcho = new UdpEchoDestination(IPAddress.Loopback);
        var (server, serverAt) = await HostProcess.StartAsync(s_environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method, "--forbidden-ip", "",
            "--plugin", "obfs-server", "--plugin-opts", "obfs=tls");
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(s_environment,
            "local", "-u", "-s", "127.0.0.1", "-p", Port(serverAt), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method,
            "--plugin", "obfs-local", "--plugin-opts", "obfs=tls;obfs-host=example.com");
        using var __ = local;

        for (var i = 0; i < 3; i++)
        {
            await EchoAsync(localAt, destination, cancel.Token);
        }

        using var client = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);
        var payload = RandomNumberGenerator.GetBytes(900);
        await client.SendAsync("127.0.0.1", udpEcho.EndPoint.Port, payload, cancel.Token);
        Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
    }

    [Fact]
    public async Task Tunnel_ThroughObfsLocal_ToLibevServerBehindObfsServer_Forwards()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", Method,
            "--plugin", "obfs-server", "--plugin-opts", "obfs=http");
        await using var tap = new TcpTap(server.EndPoint);
        var (tunnel, tunnelAt) = await HostProcess.StartAsync(s_environment,
            "tunnel", "-s", "127.0.0.1", "-p", Port(tap.EndPoint), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method,
            "-L", $"127.0.0.1:{Port(destination.EndPoint)}", "--plugin", "obfs-local", "--plugin-opts", "obfs=http;obfs-host=example.com");
        using var _ = tunnel;

        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(tunnelAt, cancel.Token);
        await Transfer.EchoRoundTripAsync(socket, 48 * 1024, cancel.Token, halfClose: false);
        AssertHttpOnTheWire(tap);
    }

    [Fact]
    public async Task AServerOnTwoAddresses_ItsPluginListensOnBoth()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var port = LoopbackPorts.Next();
        var (server, _) = await HostProcess.StartAsync(s_environment,
            "server", "-s", "127.0.0.1", "-s", "::1", "-p", Port(port), "-k", Password, "-m", Method, "--forbidden-ip", "",
            "--plugin", "obfs-server", "--plugin-opts", "obfs=http");
        using var _ = server;
        Assert.Contains($"listening on 127.0.0.1:{port} and [::1]:{port} tcp", server.Output);
        Assert.Equal("127.0.0.1|::1", ProcessTree.Environment(Assert.Single(ProcessTree.Children(server.Id)))["SS_REMOTE_HOST"]);

        foreach (var address in new[] { "127.0.0.1", "::1" })
        {
            var (local, localAt) = await HostProcess.StartAsync(s_environment,
                "local", "-s", address, "-p", Port(port), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method,
                "--plugin", "obfs-local", "--plugin-opts", "obfs=http;obfs-host=example.com");
            using var __ = local;
            await EchoAsync(localAt, destination, cancel.Token);
        }
    }

    [Fact]
    public async Task AServerOnAnyIPv6Address_ItsPluginTakesIPv4ClientsToo_AsTheServerDoesWithoutOne()
    {
        // README: alone, "::" takes IPv4 as well. obfs-server binds "::" IPv6-only, so it is also given 0.0.0.0.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var port = LoopbackPorts.Next();
        var (server, _) = await HostProcess.StartAsync(s_environment,
            "server", "-s", "::", "-p", Port(port), "-k", Password, "-m", Method, "--forbidden-ip", "",
            "--plugin", "obfs-server", "--plugin-opts", "obfs=http");
        using var _ = server;

        foreach (var address in new[] { "127.0.0.1", "::1" })
        {
            var (local, localAt) = await HostProcess.StartAsync(s_environment,
                "local", "-s", address, "-p", Port(port), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method,
                "--plugin", "obfs-local", "--plugin-opts", "obfs=http;obfs-host=example.com");
            using var __ = local;
            await EchoAsync(localAt, destination, cancel.Token);
        }
    }

    [Fact]
    public async Task ThePluginDies_TheRelayStopsWithOneLineNamingIt()
    {
        var (server, _) = await HostProcess.StartAsync(s_environment,
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method, "--plugin", "obfs-server", "--plugin-opts", "obfs=http");
        using var _ = server;
        var plugin = Assert.Single(ProcessTree.Children(server.Id));

        using (var process = Process.GetProcessById(plugin))
        {
            process.Kill();
        }

        Assert.Equal(1, await server.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("shadowsocks: plugin obfs-server exited with code 137; stopping", server.Output);
    }

    [Fact]
    public async Task APluginWhoseChildKeepsItsOutputOpen_IsStillSeenToExit()
    {
        // A wrapper script that starts the real plugin in the background and then ends: the child holds the output
        // pipes on, and the exit must be seen all the same.
        var directory = Directory.CreateTempSubdirectory("ss-plugin-wrapper-");
        var obfsPid = Path.Combine(directory.FullName, "obfs.pid");
        var script = Path.Combine(directory.FullName, "wrapper");
        File.WriteAllText(script, $"#!/bin/sh\nobfs-server &\necho $! > {obfsPid}\nsleep 1\nexit 3\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            var (server, _) = await HostProcess.StartAsync(s_environment,
                "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method, "--plugin", script);
            using var _ = server;
            Assert.Equal(1, await server.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            Assert.Contains($"shadowsocks: plugin {script} exited with code 3; stopping", server.Output);
        }
        finally
        {
            if (File.Exists(obfsPid))
            {
                using var orphan = Process.GetProcessById(int.Parse(File.ReadAllText(obfsPid).Trim(), CultureInfo.InvariantCulture));
                orphan.Kill();
            }

            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Sigterm_EndsThePluginToo()
    {
        var (local, _) = await HostProcess.StartAsync(s_environment,
            "local", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", Password, "-m", Method,
            "--plugin", "obfs-local", "--plugin-opts", "obfs=http");
        using var _ = local;
        var plugin = Assert.Single(ProcessTree.Children(local.Id));

        var (_, exitCode) = await local.StopAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(0, exitCode);
        Assert.False(Directory.Exists($"/proc/{plugin}"), "the plugin outlived the relay");
    }

    [Fact]
    public async Task APluginThatExitsBeforeListening_StopsTheStartWithOneLine()
    {
        var port = Port(LoopbackPorts.Next());
        var error = new StringWriter();
        var code = await Program.RunAsync(
            ["server", "-s", "127.0.0.1", "-p", port, "-k", Password, "-m", Method, "--plugin", "/bin/false"], new StringWriter(), error, CancellationToken.None);
        Assert.Equal(1, code);
        Assert.Equal($"shadowsocks: plugin /bin/false exited with code 1 before it listened on 127.0.0.1:{port}", error.ToString().TrimEnd());
    }

    [Fact]
    public async Task AnUnknownPlugin_IsAUsageError()
    {
        var error = new StringWriter();
        var code = await Program.RunAsync(
            ["server", "-p", Port(LoopbackPorts.Next()), "-k", Password, "--plugin", "no-such-plugin"], new StringWriter(), error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.StartsWith("shadowsocks: --plugin: 'no-such-plugin' is not an executable on PATH", error.ToString());
    }

    private static async Task EchoAsync(IPEndPoint proxy, EchoDestination destination, CancellationToken cancellationToken)
    {
        var (socket, reply) = await Socks5TestClient.ConnectAsync(proxy, "127.0.0.1", destination.EndPoint.Port, cancellationToken);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 48 * 1024, cancellationToken, halfClose: false); // simple-obfs has no half-close
    }

    private static void AssertHttpOnTheWire(TcpTap tap)
    {
        var openings = tap.Openings;
        Assert.NotEmpty(openings);
        foreach (var opening in openings.Where(o => o.Length > 0))
        {
            var text = Encoding.ASCII.GetString(opening);
            Assert.StartsWith("GET /", text);
            Assert.Contains("Host: example.com", text);
        }
    }
}
