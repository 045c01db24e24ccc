using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;

namespace Shadowsocks.Pipeline.Tests.Hosts.Configuration;

/// <summary>SIP003 plugin settings: where the program is found, the SIP002 URL's <c>?plugin=</c>, and what is refused.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PluginSettingsTests : IDisposable
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("ss-plugin-");

    public void Dispose() => _directory.Delete(recursive: true);

    [Fact]
    public void Locate_LooksABareNameUpOnPath_InOrder_AndOnlyExecutables()
    {
        var first = Directory.CreateDirectory(Path.Combine(_directory.FullName, "first")).FullName;
        var second = Directory.CreateDirectory(Path.Combine(_directory.FullName, "second")).FullName;
        File.WriteAllText(Path.Combine(first, "obfs-test"), "not executable");
        var executable = Path.Combine(second, "obfs-test");
        File.WriteAllText(executable, "#!/bin/sh\n");
        File.SetUnixFileMode(executable, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        Assert.Equal(executable, PluginSettings.Locate("obfs-test", $"{first}:{second}"));
        Assert.Null(PluginSettings.Locate("obfs-test", first));
        Assert.Null(PluginSettings.Locate("no-such-plugin", $"{first}:{second}"));
    }

    [Fact]
    public void Locate_TakesAPathAsGiven()
    {
        var executable = Path.Combine(_directory.FullName, "plugin");
        File.WriteAllText(executable, "#!/bin/sh\n");
        Assert.Null(PluginSettings.Locate(executable, "/usr/bin")); // not executable yet
        File.SetUnixFileMode(executable, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        Assert.Equal(executable, PluginSettings.Locate(executable, "/nowhere"));
    }

    [Fact]
    public void FlagsGiveThePluginAndItsOptions()
    {
        var plugin = TestSettings.Build("local",
            ["-s", "192.0.2.1", "-p", "8388", "-l", "1080", "-k", "pw", "--plugin", "sh", "--plugin-opts", "obfs=http;obfs-host=example.com"],
            new() { ["PATH"] = "/usr/bin:/bin" }).Plugin;
        Assert.NotNull(plugin);
        Assert.Equal("sh", plugin.Name);
        Assert.Equal("/usr/bin/sh", plugin.Executable);
        Assert.Equal("obfs=http;obfs-host=example.com", plugin.Options);
    }

    [Fact]
    public void NoPlugin_NoPluginSettings() =>
        Assert.Null(TestSettings.Build("server", ["-p", "8388", "-k", "pw"]).Plugin);

    [Fact]
    public void APluginWithSeveralServers_IsRefused_ItCarriesOne_ButAServerMayListenOnSeveralAddresses()
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("local",
            ["-s", "192.0.2.1", "-s", "192.0.2.2", "-p", "8388", "-l", "1080", "-k", "pw", "--plugin", "sh"], new() { ["PATH"] = "/usr/bin:/bin" }));
        Assert.Equal("--plugin: a plugin carries one server, on one port; give one, or no plugin", error.Message);

        // The server's plugin listens on each of its addresses (SIP003's "a|b"), on the one port.
        var server = TestSettings.Build("server",
            ["-s", "127.0.0.1", "-s", "::1", "-p", "8388", "-k", "pw", "--plugin", "sh"], new() { ["PATH"] = "/usr/bin:/bin" });
        Assert.NotNull(server.Plugin);
        Assert.Single(server.Relay.MoreListens);
    }

    [Fact]
    public void ServerUrl_PluginParameter_IsTheProgramThenItsOptions()
    {
        var url = ServerUrl.Parse("ss://YWVzLTI1Ni1nY206c2VjcmV0@192.0.2.1:8388/?plugin=obfs-local%3Bobfs%3Dhttp%3Bobfs-host%3Dexample.com#tag");
        Assert.Equal("obfs-local", url.Plugin);
        Assert.Equal("obfs=http;obfs-host=example.com", url.PluginOptions);
        Assert.Contains(new KeyValuePair<string, string?>("plugin", "obfs-local"), url.ToConfiguration());
        Assert.Contains(new KeyValuePair<string, string?>("plugin_opts", "obfs=http;obfs-host=example.com"), url.ToConfiguration());

        var bare = ServerUrl.Parse("ss://YWVzLTI1Ni1nY206c2VjcmV0@192.0.2.1:8388/?plugin=v2ray-plugin");
        Assert.Equal("v2ray-plugin", bare.Plugin);
        Assert.Null(bare.PluginOptions);
    }

    [Fact]
    public void ServerUrl_WithAPlugin_GivesTheRelayItsPlugin()
    {
        var settings = TestSettings.Build("local",
            ["--server-url", "ss://YWVzLTI1Ni1nY206c2VjcmV0@192.0.2.1:8388/?plugin=sh%3Bmode%3Dx", "-l", "1080"], new() { ["PATH"] = "/usr/bin:/bin" });
        Assert.Equal(new PluginSettings("sh", "/usr/bin/sh", "mode=x"), settings.Plugin);
    }

    [Fact]
    public void ServerAclWithClientListsBehindAPlugin_IsWarnedAbout()
    {
        var acl = Path.Combine(_directory.FullName, "server.acl");
        File.WriteAllText(acl, "[reject_all]\n[white_list]\n192.0.2.0/24\n");
        var warnings = TestSettings.Build("server", ["-p", "8388", "-k", "pw", "--acl", acl, "--plugin", "sh"], new() { ["PATH"] = "/usr/bin:/bin" }).Warnings;
        Assert.Equal(["--acl: behind the plugin every TCP client connects from loopback, so the ACL's client lists apply to UDP only"], warnings);

        File.WriteAllText(acl, "[outbound_block_list]\n10.0.0.0/8\n");
        Assert.Empty(TestSettings.Build("server", ["-p", "8388", "-k", "pw", "--acl", acl, "--plugin", "sh"], new() { ["PATH"] = "/usr/bin:/bin" }).Warnings);
    }

    [Theory]
    [InlineData("server")]
    [InlineData("tunnel")]
    [InlineData("local")]
    public void APluginWithUdpOnly_IsWarnedAbout_ItWouldCarryNothing(string verb)
    {
        string[] args = verb switch
        {
            "tunnel" => ["-s", "127.0.0.1", "-p", "8388", "-l", "1081", "-L", "127.0.0.1:53", "-k", "pw"],
            "local" => ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-k", "pw"],
            _ => ["-p", "8388", "-k", "pw"],
        };
        var warnings = TestSettings.Build(verb, [.. args, "-U", "--plugin", "sh"], new() { ["PATH"] = "/usr/bin:/bin" }).Warnings;
        Assert.Equal(["--plugin: not started: UDP does not go through plugins, and the mode is udp_only (-U) (ignored); relay TCP too (-u) or remove the plugin"], warnings);

        Assert.Empty(TestSettings.Build(verb, [.. args, "-u", "--plugin", "sh"], new() { ["PATH"] = "/usr/bin:/bin" }).Warnings);
    }

    [Fact]
    public void AMissingPluginWithUdpOnly_IsNoReasonToRefuse_ItWouldNotStart()
    {
        var settings = TestSettings.Build("server", ["-p", "8388", "-k", "pw", "-U", "--plugin", "no-such-plugin"], new() { ["PATH"] = "/usr/bin:/bin" });
        Assert.Equal(["--plugin: not started: UDP does not go through plugins, and the mode is udp_only (-U) (ignored); relay TCP too (-u) or remove the plugin"], settings.Warnings);

        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-p", "8388", "-k", "pw", "-u", "--plugin", "no-such-plugin"], new() { ["PATH"] = "/usr/bin:/bin" }));
        Assert.StartsWith("--plugin: 'no-such-plugin' is not an executable on PATH", error.Message);
    }
}
