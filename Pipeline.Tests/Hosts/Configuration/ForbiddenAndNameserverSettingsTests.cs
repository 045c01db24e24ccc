using System.Net;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Stages.Connect;

namespace Shadowsocks.Pipeline.Tests.Hosts.Configuration;

public sealed class ForbiddenAndNameserverSettingsTests
{
    private static readonly string[] s_server = ["-p", "8388", "-k", "pw", "-m", "aes-256-gcm"];

    [Fact]
    public void ForbiddenIp_DefaultsToLoopback_EmptyAllowsAll()
    {
        var defaults = TestSettings.Build("server", s_server).Relay.Forbidden;
        Assert.True(defaults.Contains(IPAddress.Parse("127.0.0.1")));
        Assert.True(defaults.Contains(IPAddress.Parse("127.9.9.9")));
        Assert.True(defaults.Contains(IPAddress.IPv6Loopback));
        Assert.True(defaults.Contains(IPAddress.Parse("::ffff:127.0.0.1")));
        Assert.False(defaults.Contains(IPAddress.Parse("10.0.0.1")));

        var none = TestSettings.Build("server", [.. s_server, "--forbidden-ip", ""]).Relay.Forbidden;
        Assert.True(none.IsEmpty);
        Assert.False(none.Contains(IPAddress.Loopback));
    }

    [Fact]
    public void ForbiddenIp_FromConfig_AsStringOrArray()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, """{ "server_port": 8388, "password": "pw", "forbidden_ip": "10.0.0.0/8, 192.168.1.1" }""");
            var fromString = TestSettings.Build("server", ["-c", path]).Relay.Forbidden;
            Assert.True(fromString.Contains(IPAddress.Parse("10.200.0.1")));
            Assert.True(fromString.Contains(IPAddress.Parse("192.168.1.1")));
            Assert.False(fromString.Contains(IPAddress.Parse("192.168.1.2")));
            Assert.False(fromString.Contains(IPAddress.Loopback));

            File.WriteAllText(path, """{ "server_port": 8388, "password": "pw", "forbidden_ip": ["fd00::/8", "1.2.3.4"] }""");
            var fromArray = TestSettings.Build("server", ["-c", path]).Relay.Forbidden;
            Assert.True(fromArray.Contains(IPAddress.Parse("fd12::1")));
            Assert.True(fromArray.Contains(IPAddress.Parse("1.2.3.4")));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BadForbiddenIpOrNameserver_IsOneLineNamingTheField()
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", [.. s_server, "--forbidden-ip", "10.0.0.0/8,not-an-ip"]));
        Assert.StartsWith("--forbidden-ip: 'not-an-ip'", error.Message);
        Assert.DoesNotContain("\n", error.Message, StringComparison.Ordinal);

        error = Assert.Throws<UsageException>(() => TestSettings.Build("server", [.. s_server, "-d", "1.1.1.1,dns.example"]));
        Assert.StartsWith("-d: 'dns.example'", error.Message);

        var ok = TestSettings.Build("server", [.. s_server, "-d", "127.0.0.1:5353,[::1]"]);
        Assert.Equal(["127.0.0.1:5353", "[::1]:53"], ok.Nameservers!.Select(e => e.ToString()));
    }

    [Fact]
    public void Limits_HaveDefaults_FlagsAndConfigKeys()
    {
        var defaults = TestSettings.Build("server", s_server).Relay;
        Assert.Equal(HostSettings.DefaultMaxConnections, defaults.MaxConnections);
        Assert.Equal(TimeSpan.FromSeconds(HostSettings.DefaultHandshakeTimeoutSeconds), defaults.HandshakeTimeout);
        Assert.Equal(TimeSpan.FromSeconds(HostSettings.DefaultConnectTimeoutSeconds), defaults.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(300), defaults.UdpTimeout);

        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, """{ "server_port": 8388, "password": "pw", "max_connections": 500, "handshake_timeout": 4, "connect_timeout": 3, "udp_timeout": 30, "udp_max_associations": 64 }""");
            var fromFile = TestSettings.Build("server", ["-c", path, "--max-connections", "700"]).Relay;
            Assert.Equal(700, fromFile.MaxConnections); // the flag wins
            Assert.Equal(TimeSpan.FromSeconds(HostSettings.DefaultHandshakeTimeoutSeconds), fromFile.HandshakeTimeout); // the local's only
            Assert.Equal(TimeSpan.FromSeconds(4), TestSettings.Build("local", ["-c", path, "-s", "127.0.0.1", "-l", "1080"]).Relay.HandshakeTimeout);
            Assert.Equal(TimeSpan.FromSeconds(3), fromFile.ConnectTimeout);
            Assert.Equal(TimeSpan.FromSeconds(25), TestSettings.Build("local", ["-c", path, "-s", "127.0.0.1", "-l", "1080", "--connect-timeout", "25"]).Relay.ConnectTimeout); // the flag wins
            Assert.Equal(TimeSpan.FromSeconds(30), fromFile.UdpTimeout);
            Assert.Equal(64, fromFile.UdpMaxAssociations);
        }
        finally
        {
            File.Delete(path);
        }

        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", [.. s_server, "--max-connections", "0"]));
        Assert.StartsWith("--max-connections:", error.Message);
    }

    [Fact]
    public void SeveralServers_FromRepeatedFlagOrConfigArray()
    {
        var flags = TestSettings.Build("local", ["-s", "127.0.0.1", "-s", "10.0.0.2", "-p", "8388", "-l", "1080", "-k", "pw"]).Relay;
        Assert.Equal("127.0.0.1:8388", flags.Server!.ToString());
        Assert.Equal(["10.0.0.2:8388"], flags.FallbackServers.Select(s => s.ToString()));

        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, """{ "servers": [ { "server": "10.0.0.1", "server_port": 8388 }, { "server": "10.0.0.2", "server_port": 9000 } ], "local_port": 1080, "password": "pw" }""");
            var file = TestSettings.Build("local", ["-c", path]).Relay;
            Assert.Equal("10.0.0.1:8388", file.Server!.ToString());
            Assert.Equal(["10.0.0.2:9000"], file.FallbackServers.Select(s => s.ToString()));

            File.WriteAllText(path, """{ "servers": [ { "port": 1 } ], "local_port": 1080, "password": "pw" }""");
            var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-c", path]));
            Assert.StartsWith("servers.0:", error.Message); // the entry without a host
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SeveralServers_TheSameServerTwice_IsTriedOnce()
    {
        // Given twice, a server that never answered cost each connection two connect timeouts before the next was tried.
        var flags = TestSettings.Build("local", ["-s", "127.0.0.1:8388", "-s", "127.0.0.1", "-s", "[::1]:8388", "-s", "::1", "-s", "name.test", "-s", "name.test:8388", "-s", "Name.TEST",
            "-p", "8388", "-l", "1080", "-k", "pw"]).Relay;
        Assert.Equal("127.0.0.1:8388", flags.Server!.ToString());
        Assert.Equal(["[::1]:8388", "name.test:8388"], flags.FallbackServers.Select(ServerFailover.Name));
    }
}
