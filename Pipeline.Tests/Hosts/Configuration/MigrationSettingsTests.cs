using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Tests.Hosts.Configuration;

/// <summary>
/// Config files written for shadowsocks-libev or shadowsocks-rust, read as those programs read them: keys they
/// document do the same here, or say in one line what they do instead.
/// </summary>
public sealed class MigrationSettingsTests : IDisposable
{
    private readonly string _file = Path.GetTempFileName();

    public void Dispose() => File.Delete(_file);

    [Fact]
    public void RustServersEntries_AddressAndPortAliases_DisabledEntryLeftOut()
    {
        File.WriteAllText(_file, """
            { "local_port": 1080, "servers": [
                { "address": "192.0.2.9", "port": 9000, "method": "aes-256-gcm", "password": "pw", "disabled": true },
                { "address": "192.0.2.1", "port": 8388, "method": "aes-256-gcm", "password": "pw", "remarks": "first" },
                { "server": "192.0.2.2", "server_port": 8389, "method": "aes-256-gcm", "password": "pw", "disabled": false } ] }
            """);

        var settings = TestSettings.Build("local", ["-c", _file]);

        Assert.Equal("192.0.2.1:8388", settings.Relay.Server!.ToString());
        Assert.Equal(["192.0.2.2:8389"], settings.Relay.FallbackServers.Select(s => s.ToString()));
        Assert.Empty(settings.Warnings);
    }

    [Fact]
    public void RustLocals_WithoutLocalPort_SaysWhatToGiveInstead()
    {
        File.WriteAllText(_file, """
            { "server": "192.0.2.1", "server_port": 8388, "method": "aes-256-gcm", "password": "pw",
              "locals": [ { "local_address": "127.0.0.1", "local_port": 1080 } ] }
            """);

        var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-c", _file]));

        Assert.StartsWith("locals: shadowsocks-rust's list of local listeners is not read here; give one listener as \"local_address\" and \"local_port\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RustLocals_BesideLocalPort_IsOneWarning()
    {
        File.WriteAllText(_file, """
            { "server": "192.0.2.1", "server_port": 8388, "method": "aes-256-gcm", "password": "pw", "local_port": 1080,
              "locals": [ { "local_address": "127.0.0.1", "local_port": 1081 } ] }
            """);

        var settings = TestSettings.Build("local", ["-c", _file]);

        var warning = Assert.Single(settings.Warnings);
        Assert.Contains("shadowsocks-rust's list of local listeners is not read (ignored)", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void RustServersEntries_EveryOneDisabled_IsOneLine()
    {
        File.WriteAllText(_file, """
            { "local_port": 1080, "servers": [ { "server": "192.0.2.1", "server_port": 8388, "method": "aes-256-gcm", "password": "pw", "disabled": true } ] }
            """);

        var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-c", _file]));

        Assert.StartsWith($"servers: in {_file}, every server is \"disabled\": true", error.Message);
    }

    [Fact]
    public void RustServersEntry_OwnPluginOrMode_IsSaidToBeIgnored()
    {
        File.WriteAllText(_file, """
            { "local_port": 1080, "servers": [
                { "server": "192.0.2.1", "server_port": 8388, "method": "aes-256-gcm", "password": "pw", "plugin": "obfs-local", "mode": "tcp_and_udp" } ] }
            """);

        var settings = TestSettings.Build("local", ["-c", _file]);

        Assert.Null(settings.Plugin);
        Assert.Contains(settings.Warnings, w => w.StartsWith($"servers.0.plugin: in {_file}, a server entry's own plugin is not read (ignored); give \"plugin\" at the top level", StringComparison.Ordinal));
        Assert.Contains(settings.Warnings, w => w.StartsWith($"servers.0.mode: in {_file}, a server entry's own mode is not read (ignored)", StringComparison.Ordinal));
    }

    [Fact]
    public void RustServerConfig_ThePortInItsServersEntry_IsTheOneListenedOn()
    {
        // shadowsocks-rust's ssserver config: everything in the entry. Refused with "-p: missing server port (or
        // "server_port" in the config file)", which the file had.
        File.WriteAllText(_file, """{ "servers": [ { "server": "127.0.0.1", "server_port": 8390, "method": "aes-256-gcm", "password": "pw" } ] }""");

        var settings = TestSettings.Build("server", ["-c", _file]);

        Assert.Equal("127.0.0.1:8390", settings.Relay.Listen.ToString());
        Assert.Empty(settings.Warnings);
    }

    [Fact]
    public void RustDns_Addresses_AreTheNameservers()
    {
        File.WriteAllText(_file, """{ "server_port": 8388, "password": "pw", "dns": "1.1.1.1,[::1]:5353" }""");

        var settings = TestSettings.Build("server", ["-c", _file]);

        Assert.Equal(["1.1.1.1:53", "[::1]:5353"], settings.Nameservers!.Select(e => e.ToString()));
        Assert.Empty(settings.Warnings);
    }

    [Fact]
    public void RustDns_ResolverName_IsOneLineSayingWhatToGive()
    {
        File.WriteAllText(_file, """{ "server_port": 8388, "password": "pw", "dns": "cloudflare" }""");

        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", _file]));

        Assert.StartsWith($"dns: in {_file}, 'cloudflare' is not a list of name server addresses", error.Message);
        Assert.Contains("e.g. 8.8.8.8,1.1.1.1", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""["::0", "0.0.0.0"]""", "", true)]   // ss-libev's manual: :: cannot take IPv4 too
    [InlineData("""["::", "127.0.0.1"]""", "", true)]
    [InlineData("\"::\"", "", false)]                  // alone, :: takes both families
    [InlineData("\"::\"", ", \"ipv6_only\": true", true)] // shadowsocks-rust's key
    public void ListenOnAnyV6_TakesIpv6OnlyBesideAnIpv4Address(string server, string more, bool ipv6Only)
    {
        File.WriteAllText(_file, $$"""{ "server": {{server}}, "server_port": 8388, "password": "pw"{{more}} }""");

        var settings = TestSettings.Build("server", ["-c", _file]);

        Assert.Equal(ipv6Only, settings.Relay.ListenIpv6Only);
        Assert.Empty(settings.Warnings);
    }
}
