using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;

namespace Shadowsocks.Pipeline.Tests.Hosts.Configuration;

public sealed class HostSettingsTests
{
    [Fact]
    public void Build_FlagWinsOverConfigFile()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, """{ "server": "127.0.0.1", "server_port": 8388, "local_port": 1080, "password": "from-file", "method": "aes-128-gcm", "timeout": 30 }""");
        try
        {
            var settings = TestSettings.Build("local", ["-c", path, "-m", "aes-256-gcm", "-t", "90"]);
            Assert.Equal("aes-256-gcm", settings.Relay.Cipher.Name);
            Assert.Equal(TimeSpan.FromSeconds(90), settings.Relay.IdleTimeout);
            Assert.Equal(1080, settings.Relay.Listen.Port);
            Assert.Equal("127.0.0.1:8388", settings.Relay.Server!.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Build_FastOpen_FromTheFlagOrTheConfigFile_OffOtherwise()
    {
        Assert.True(TestSettings.Build("server", ["-p", "8388", "-k", "x", "-m", "aes-256-gcm", "--fast-open"]).Relay.FastOpen);
        Assert.False(TestSettings.Build("server", ["-p", "8388", "-k", "x", "-m", "aes-256-gcm"]).Relay.FastOpen);
        var path = Path.GetTempFileName();
        File.WriteAllText(path, """{ "server": "127.0.0.1", "server_port": 8388, "local_port": 1080, "password": "p", "method": "aes-256-gcm", "fast_open": true }""");
        try
        {
            Assert.True(TestSettings.Build("local", ["-c", path]).Relay.FastOpen);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Build_SocketFlags_AreOffUnlessGiven()
    {
        var plain = TestSettings.Build("server", ["-p", "8388", "-k", "x", "-m", "aes-256-gcm"]);
        Assert.False(plain.Relay.ReusePort || plain.Relay.Mptcp);
        Assert.Null(plain.User);
        Assert.Null(plain.Nofile);
        var given = TestSettings.Build("server", ["-p", "8388", "-k", "x", "-m", "aes-256-gcm", "--reuse-port", "--mptcp", "-a", "nobody", "-n", "4096"]);
        Assert.True(given.Relay.ReusePort && given.Relay.Mptcp);
        Assert.Equal("nobody", given.User);
        Assert.Equal(4096, given.Nofile);
    }

    [Fact]
    public void Build_MissingPassword_NamesTheFlagAndTheFix()
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-p", "8388", "-m", "aes-256-gcm"]));
        Assert.StartsWith("-k: missing password", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Build_UnknownMethod_SuggestsCloseMatches()
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-p", "8388", "-k", "x", "-m", "aes-256-gmc"]));
        Assert.Contains("aes-256-gcm", error.Message);
    }

    [Fact]
    public void Build_KeyOfWrongLength_SaysExpectedLength()
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-p", "8388", "--key", Convert.ToBase64String(new byte[16]), "-m", "aes-256-gcm"]));
        Assert.Contains("32 bytes", error.Message);
    }

    [Fact]
    public void A2022Method_TakesItsPasswordAsTheBase64Key_AndRefusesAPassphrase()
    {
        var psk = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
        var fromPassword = TestSettings.Build("server", ["-p", "8388", "-k", Convert.ToBase64String(psk), "-m", "2022-blake3-aes-256-gcm"]);
        Assert.Equal(psk, fromPassword.Relay.MasterKey);
        var fromKey = TestSettings.Build("server", ["-p", "8388", "--key", Convert.ToBase64String(psk), "-m", "2022-blake3-aes-256-gcm", "-u"]);
        Assert.Equal(psk, fromKey.Relay.MasterKey);

        var passphrase = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-p", "8388", "-k", "correct horse battery", "-m", "2022-blake3-aes-256-gcm"]));
        Assert.StartsWith("-k: ", passphrase.Message);
        Assert.Contains("base64 key", passphrase.Message);
        Assert.Contains("genkey -m 2022-blake3-aes-256-gcm", passphrase.Message);
        Assert.DoesNotContain('\n', passphrase.Message);

        var shortKey = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-p", "8388", "-k", Convert.ToBase64String(new byte[16]), "-m", "2022-blake3-aes-256-gcm"]));
        Assert.Contains("32 bytes", shortKey.Message);
    }

    [Fact]
    public void A2022ServersList_WithTheSameBase64Password_IsOneSecret_AndAnotherIsRefused()
    {
        var psk = Convert.ToBase64String(Enumerable.Range(1, 16).Select(i => (byte)i).ToArray());
        var other = Convert.ToBase64String(new byte[16]);
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, Servers(psk, psk));
            Assert.Equal(16, TestSettings.Build("local", ["-c", path]).Relay.MasterKey.Length);

            File.WriteAllText(path, Servers(psk, other));
            var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-c", path]));
            Assert.Contains("differs from the password in use", error.Message);
        }
        finally
        {
            File.Delete(path);
        }

        static string Servers(string first, string second) =>
            "{ \"local_port\": 1080, \"servers\": ["
            + $"{{ \"server\": \"127.0.0.1\", \"server_port\": 8388, \"method\": \"2022-blake3-aes-128-gcm\", \"password\": \"{first}\" }},"
            + $"{{ \"server\": \"127.0.0.2\", \"server_port\": 8388, \"method\": \"2022-blake3-aes-128-gcm\", \"password\": \"{second}\" }} ] }}";
    }

    [Fact]
    public void Build_BadPort_NamesTheFlag()
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-p", "99999", "-k", "x"]));
        Assert.StartsWith("-p:", error.Message);
    }

    [Fact]
    public void Build_TunnelDestination_ParsesIpv6AndDomain()
    {
        var v6 = TestSettings.Build("tunnel", ["-s", "127.0.0.1", "-p", "1", "-l", "2", "-k", "x", "-L", "[::1]:53"]);
        Assert.Equal("[::1]:53", v6.Relay.TunnelDestination.ToString());
        var name = TestSettings.Build("tunnel", ["-s", "127.0.0.1", "-p", "1", "-l", "2", "-k", "x", "-L", "example.test:80"]);
        Assert.Equal("example.test", name.Relay.TunnelDestination!.Value.Host);
    }

    [Theory]
    [InlineData("1.1.1.1:+53")]
    [InlineData("1.1.1.1: 53")]
    [InlineData("1.1.1.1:53 ")]
    [InlineData("1.1.1.1:0")]
    [InlineData("1.1.1.1:65536")]
    public void ATunnelDestinationPort_IsDigitsOnly_AsTheServerUrlsIs(string destination)
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("tunnel", ["-s", "127.0.0.1", "-p", "1", "-l", "2", "-k", "x", "-L", destination]));
        Assert.Contains("is not HOST:PORT", error.Message);
    }

    [Fact]
    public void AMissingTunnelDestination_NamesTheFlag_AndTheConfigKey()
    {
        // A config file written for ss-tunnel with its key misspelt ("tunnel_addr") gets this line, and no other.
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("tunnel", ["-s", "127.0.0.1", "-p", "1", "-l", "2", "-k", "x"]));
        Assert.Equal("-L: missing tunnel destination; give -L HOST:PORT (or \"tunnel_address\" in the config file)", error.Message);
    }

    [Theory]
    [InlineData(" 1.1.1.1:53")]
    [InlineData("1.1.1.1 :53")]
    [InlineData("dns example:53")]
    [InlineData("b\u00fccher.example:80")]
    public void ATunnelDestinationHost_ThatAServerWouldRefuse_IsRefusedAtStart(string destination)
    {
        // Sent as a name, each was read by the server (ours and ss-server alike) as a malformed header, and every
        // connection hung until the server's drain ended it.
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("tunnel", ["-s", "127.0.0.1", "-p", "1", "-l", "2", "-k", "x", "-L", destination]));
        Assert.StartsWith("-L: host name '", error.Message);
        Assert.Contains("punycode", error.Message);
    }

    [Theory]
    [InlineData("-s", "dns example", "-s: host name 'dns example'")]
    [InlineData("-s", "b\u00fccher.example", "-s: host name 'b\u00fccher.example'")]
    [InlineData("--server-url", "ss://aes-256-gcm:pw@dns example:8388", "--server-url: host name 'dns example'")]
    public void AServerHost_ThatNoResolverFinds_IsRefusedAtStart(string flag, string value, string expected)
    {
        // Was taken as is, and every connection failed on its lookup.
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", [flag, value, "-p", "8388", "-l", "1080", "-k", "x"]));
        Assert.StartsWith(expected, error.Message);
        Assert.Contains("punycode", error.Message);
    }

    [Fact]
    public void Build_ModeFromFlagsAndFile()
    {
        Assert.Equal(RelayMode.TcpAndUdp, TestSettings.Build("server", ["-p", "1", "-k", "x", "-u"]).Mode);
        Assert.Equal(RelayMode.UdpOnly, TestSettings.Build("server", ["-p", "1", "-k", "x", "-U"]).Mode);
        Assert.Equal(RelayMode.TcpOnly, TestSettings.Build("server", ["-p", "1", "-k", "x"]).Mode);
    }

    [Fact]
    public void FlagsThatSetOneThing_TheLastGivenWins_AsWithSsLibev()
    {
        // They were applied in the flags' table order: -U -u gave UDP only, where ss-server relays both.
        Assert.Equal(RelayMode.TcpAndUdp, TestSettings.Build("server", ["-p", "1", "-k", "x", "-U", "-u"]).Mode);
        Assert.Equal(RelayMode.UdpOnly, TestSettings.Build("server", ["-p", "1", "-k", "x", "-u", "-U"]).Mode);
        Assert.Equal(RelayMode.UdpOnly, TestSettings.Build("server", ["-p", "1", "-k", "x", "--tcp-and-udp", "--udp-only"]).Mode);

        var environment = new Dictionary<string, string?> { ["OTHER_PW"] = "from-variable" };
        var fromVariable = TestSettings.Build("server", ["-p", "1", "-k", "from-flag", "--password-env", "OTHER_PW"], environment).Relay;
        var fromFlag = TestSettings.Build("server", ["-p", "1", "--password-env", "OTHER_PW", "-k", "from-flag"], environment).Relay;
        Assert.Equal(KeyDerivation.MasterKeyFromPassword(fromVariable.Cipher, "from-variable"), fromVariable.MasterKey);
        Assert.Equal(KeyDerivation.MasterKeyFromPassword(fromFlag.Cipher, "from-flag"), fromFlag.MasterKey);
    }

    [Fact]
    public void Parse_UnknownOption_IsAUsageError()
    {
        var error = Assert.Throws<UsageException>(() => CommandLine.ParseVerb("server", ["--bogus"]));
        Assert.StartsWith("--bogus:", error.Message);
    }

    [Fact]
    public void Build_PipelineSection_ChangesStageOptions()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, """{ "server_port": 8388, "password": "x", "pipeline": { "resolve": { "max_parallelism": 7, "bounded_capacity": 99 } } }""");
        try
        {
            var settings = TestSettings.Build("server", ["-c", path]);
            Assert.Equal(7, settings.Relay.Pipeline.Resolve.MaxParallelism);
            Assert.Equal(99, settings.Relay.Pipeline.Resolve.BoundedCapacity);
            Assert.Equal(Shadowsocks.Pipeline.Core.Configuration.PipelineOptions.Default.Connect, settings.Relay.Pipeline.Connect);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Build_ReadBudget_DefaultsTo32MiB_AndTheConfigSetsIt()
    {
        var defaults = TestSettings.Build("server", ["-p", "8388", "-k", "x"]);
        Assert.Equal(32, defaults.Relay.Pipeline.ReadBudgetMiB);
        Assert.Equal(ReadBudget.Largest, defaults.Relay.ReadBudget.BufferSize);

        var path = Path.GetTempFileName();
        File.WriteAllText(path, """{ "server_port": 8388, "password": "x", "pipeline": { "read_budget_mib": 1, "resolve": { "max_parallelism": 7 } } }""");
        try
        {
            var settings = TestSettings.Build("server", ["-c", path]);
            Assert.Equal(1, settings.Relay.Pipeline.ReadBudgetMiB);
            Assert.Equal(7, settings.Relay.Pipeline.Resolve.MaxParallelism);

            // 1 MiB among 16 busy pumps: 64 KiB each (32 MiB would still give each 128 KiB).
            var budget = settings.Relay.ReadBudget;
            for (var i = 0; i < 16; i++)
            {
                budget.Enter();
            }

            Assert.Equal(64 * 1024, budget.BufferSize);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("""{ "pipeline": { "read_budget_mib": 0 } }""", "pipeline.read_budget_mib: in")]
    [InlineData("""{ "pipeline": { "read_budget_mib": "lots" } }""", "pipeline.read_budget_mib: in")]
    [InlineData("""{ "pipeline": { "resolv": { "max_parallelism": 7 } } }""", "pipeline.resolv:")]
    [InlineData("""{ "pipeline": { "resolve": { "max_parallelism": 0 } } }""", "pipeline.resolve.max_parallelism:")]
    [InlineData("""{ "pipeline": { "resolve": { "parallel": 2 } } }""", "pipeline.resolve.parallel:")]
    public void Build_BadPipelineField_NamesTheField(string json, string prefix)
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, json);
        try
        {
            var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", path, "-p", "1", "-k", "x"]));
            Assert.StartsWith(prefix, error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ATunnelDestination_InIPv6WithoutBrackets_IsRefused()
    {
        // Was taken as host "2001:db8:" port 53, which every server refuses as a host name.
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("tunnel", ["-s", "127.0.0.1", "-p", "1", "-l", "2", "-k", "x", "-L", "2001:db8::53"]));
        Assert.StartsWith("-L: '2001:db8::53': an IPv6 address goes in brackets", error.Message);
    }

    [Theory]
    [InlineData("127.0.0.1:8389", "127.0.0.1:8389")]
    [InlineData("[::1]:8389", "[::1]:8389")]
    [InlineData("example.com:8389", "example.com:8389")]
    [InlineData("::1", "[::1]:8388")] // an IPv6 address without brackets is all host, as ss-libev reads it
    public void Build_ServerFlagWithAPort_TakesThatPort_AsSsLocalDoes(string given, string expected)
    {
        var settings = TestSettings.Build("local", ["-s", given, "-p", "8388", "-l", "1080", "-k", "x"]);
        Assert.Equal(expected, settings.Relay.Server switch
        {
            System.Net.DnsEndPoint dns => $"{dns.Host}:{dns.Port}",
            var other => other!.ToString(),
        });
    }

    [Fact]
    public void Build_ServerFlagWithABadPort_IsOneLineNamingTheFlag()
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-s", "127.0.0.1:http", "-p", "8388", "-l", "1080", "-k", "x"]));
        Assert.StartsWith("-s: '127.0.0.1:http'", error.Message, StringComparison.Ordinal);
    }
}
