using System.Net;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;

namespace Shadowsocks.Pipeline.Tests.Hosts.Configuration;

/// <summary>
/// The four layers, each winning over the one before: config.json, --server-url, SHADOWSOCKS_* variables, flags;
/// and every invalid field answered with one line that names where it came from and what would be valid.
/// </summary>
public sealed class LayeredSettingsTests : IDisposable
{
    private readonly string _file = Path.GetTempFileName();

    public void Dispose() => File.Delete(_file);

    [Fact]
    public void Precedence_FileThenUrlThenEnvironmentThenFlags()
    {
        File.WriteAllText(_file, """
            {
              // comments and trailing commas (ss-libev's parser takes the commas, not the comments)
              "server": "10.0.0.1", "server_port": 1001, "local_port": 1080, "password": "file",
              "method": "aes-128-gcm", "timeout": 10, "udp_timeout": 20, "mode": "tcp_and_udp",
            }
            """);
        var url = $"ss://{Convert.ToBase64String("aes-192-gcm:url"u8.ToArray()).TrimEnd('=')}@10.0.0.2:1002";
        var environment = new Dictionary<string, string?> { ["SHADOWSOCKS_SERVER_PORT"] = "1003", ["SHADOWSOCKS_TIMEOUT"] = "30", ["SHADOWSOCKS_PASSWORD"] = "env" };

        var settings = TestSettings.Build("local", ["-c", _file, "--server-url", url, "-t", "40"], environment);

        Assert.Equal("aes-192-gcm", settings.Relay.Cipher.Name);                // url over file
        Assert.Equal("10.0.0.2:1003", settings.Relay.Server!.ToString());      // host from url, port from environment
        Assert.Equal(TimeSpan.FromSeconds(40), settings.Relay.IdleTimeout);     // flag over environment
        Assert.Equal(TimeSpan.FromSeconds(20), settings.Relay.UdpTimeout);      // only the file says
        Assert.Equal(RelayMode.TcpAndUdp, settings.Mode);
        Assert.Equal(KeyDerivation.MasterKeyFromPassword(settings.Relay.Cipher, "env"), settings.Relay.MasterKey); // environment over url

        var flagPassword = TestSettings.Build("local", ["-c", _file, "--server-url", url, "-k", "flag"], environment);
        Assert.Equal(KeyDerivation.MasterKeyFromPassword(flagPassword.Relay.Cipher, "flag"), flagPassword.Relay.MasterKey);

        var fileOnly = TestSettings.Build("local", ["-c", _file]);
        Assert.Equal("aes-128-gcm", fileOnly.Relay.Cipher.Name);
        Assert.Equal("10.0.0.1:1001", fileOnly.Relay.Server!.ToString());
    }

    [Fact]
    public void Environment_NestedKeysAndPasswordEnv()
    {
        var environment = new Dictionary<string, string?>
        {
            ["SHADOWSOCKS_PIPELINE__RESOLVE__MAX_PARALLELISM"] = "5",
            ["MY_SECRET"] = "from-my-variable",
        };
        var settings = TestSettings.Build("server", ["-p", "8388", "-m", "aes-256-gcm", "--password-env", "MY_SECRET"], environment);
        Assert.Equal(5, settings.Relay.Pipeline.Resolve.MaxParallelism);
        Assert.Equal(KeyDerivation.MasterKeyFromPassword(settings.Relay.Cipher, "from-my-variable"), settings.Relay.MasterKey);
    }

    [Fact]
    public void Telemetry_SectionAndTracesFlag()
    {
        File.WriteAllText(_file, """{ "server_port": 8388, "password": "pw", "telemetry": { "otlp_endpoint": "http://127.0.0.1:4318", "otlp_protocol": "http/protobuf", "traces": "from-file" } }""");
        var settings = TestSettings.Build("server", ["-c", _file, "--traces", "from-flag"]);
        Assert.Equal(new Uri("http://127.0.0.1:4318"), settings.Telemetry.OtlpEndpoint);
        Assert.Equal(OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf, settings.Telemetry.OtlpProtocol);
        Assert.Equal("from-flag", settings.Telemetry.TracesDirectory);
    }

    [Fact]
    public void Telemetry_MetricsListen_FromFileOrFlag_WarnsWhenNotLoopback()
    {
        File.WriteAllText(_file, """{ "server_port": 8388, "password": "pw", "telemetry": { "metrics_listen": "[::1]:9464" } }""");
        var fromFile = TestSettings.Build("server", ["-c", _file]);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 9464), fromFile.Telemetry.MetricsListen);
        Assert.DoesNotContain(fromFile.Warnings, w => w.Contains("metrics", StringComparison.Ordinal));

        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9100), TestSettings.Build("server", ["-c", _file, "--metrics", "localhost:9100"]).Telemetry.MetricsListen);
        Assert.Null(TestSettings.Build("server", ["-p", "8388", "-k", "pw"]).Telemetry.MetricsListen);

        var open = TestSettings.Build("server", ["-c", _file, "--metrics", "0.0.0.0:9464"]);
        Assert.Contains(open.Warnings, w => w.StartsWith("--metrics: 0.0.0.0:9464 is not loopback: /metrics has no authentication", StringComparison.Ordinal));
    }

    public static TheoryData<string[], string, Dictionary<string, string?>, string> InvalidFields => new()
    {
        // command line, config.json, environment, the error's opening words
        { ["-p", "0"], "", [], "-p: '0' is not a number from 1 to 65535" },
        { ["-t", "soon"], "", [], "-t: 'soon' is not a number from 1 to 86400" },
        { [], """{ "timeout": -1 }""", [], "timeout: in FILE, '-1' is not a number from 1 to 86400" },
        { [], """{ "udp_timeout": "x" }""", [], "udp_timeout: in FILE, 'x' is not a number" },
        { ["--connect-timeout", "0"], "", [], "--connect-timeout: '0' is not a number from 1 to 3600" },
        { [], """{ "connect_timeout": "10s" }""", [], "connect_timeout: in FILE, '10s' is not a number from 1 to 3600" },
        { [], "", new() { ["SHADOWSOCKS_MAX_CONNECTIONS"] = "lots" }, "SHADOWSOCKS_MAX_CONNECTIONS: 'lots' is not a number from 1 to 10000000" },
        { [], """{ "mode": "both" }""", [], "mode: in FILE, 'both' is not tcp_only, tcp_and_udp or udp_only" },
        { [], "", new() { ["SHADOWSOCKS_MODE"] = "udp" }, "SHADOWSOCKS_MODE: 'udp' is not tcp_only, tcp_and_udp or udp_only" },
        { [], """{ "ipv6_first": "maybe" }""", [], "ipv6_first: in FILE, 'maybe' is not true or false" },
        { ["-s", "not-an-ip"], "", [], "-s: 'not-an-ip' is not an IP address to listen on" },
        { [], """{ "plugin": "no-such-plugin" }""", [], "plugin: in FILE, 'no-such-plugin' is not an executable on PATH; install it" },
        { ["--plugin", "/tmp"], "", [], "--plugin: '/tmp' is a directory; give the plugin program's path" },
        { ["--plugin", "/etc/passwd"], "", [], "--plugin: '/etc/passwd' is not executable; make it so (chmod +x)" },
        { ["--plugin", "/no/such/plugin"], "", [], "--plugin: '/no/such/plugin' no such file; give the plugin program's path" },
        { ["--plugin-opts", "obfs=http"], "", [], "--plugin-opts: plugin options without a plugin; give --plugin PROGRAM too" },
        { ["--key", "AAAA"], "", [], "--key:" },
        { [], """{ "telemetry": { "otlp_protocol": "udp" } }""", [], "telemetry.otlp_protocol: in FILE, 'udp' is not grpc or http/protobuf" },
        { [], """{ "telemetry": { "otlp_endpoint": "localhost:4317" } }""", [], "telemetry.otlp_endpoint: in FILE, 'localhost:4317' is not an http:// or https:// URL" },
        { ["--metrics", "9464"], "", [], "--metrics: '9464' is not ADDR:PORT to serve Prometheus metrics on; give e.g. 127.0.0.1:9464 or [::1]:9464" },
        { [], """{ "telemetry": { "metrics_listen": "prometheus.example:9464" } }""", [], "telemetry.metrics_listen: in FILE, 'prometheus.example:9464' is not ADDR:PORT" },
        { [], """{ "telemetry": { "metrics_listen": "::1:9464" } }""", [], "telemetry.metrics_listen: in FILE, '::1:9464' is not ADDR:PORT" },
        { ["--metrics", "127.0.0.1:0"], "", [], "--metrics: '127.0.0.1:0' is not ADDR:PORT" },
        { [], """{ "pipeline": { "encrypt": { "bounded_capacity": 0 } } }""", [], "pipeline.encrypt.bounded_capacity: in FILE, '0' is not a number from 1 to 1000000" },
        { [], "", new() { ["SHADOWSOCKS_PIPELINE__UDP__MAX_PARALLELISM"] = "0" }, "SHADOWSOCKS_PIPELINE__UDP__MAX_PARALLELISM: '0' is not a number" },
        { [], """{ "pipeline": 4 }""", [], "pipeline: in FILE, expected an object of stages" },
        { [], """{ "pipeline": { "encrypt": { "max_parallelism": 4 } } }""", [], "pipeline.encrypt.max_parallelism: in FILE, '4': a per-connection stage works on one chunk at a time, so that a stream's chunks stay in order; give 1 or leave it out" },
        { [], "", new() { ["SHADOWSOCKS_PIPELINE__FORWARD__MAX_PARALLELISM"] = "2" }, "SHADOWSOCKS_PIPELINE__FORWARD__MAX_PARALLELISM: '2': a per-connection stage works on one chunk at a time" },
        { [], """{ "pipeline": { "connect": { "max_paralelism": "x" } } }""", [], "pipeline.connect.max_paralelism: in FILE, unknown setting; use max_parallelism or bounded_capacity" },
        { [], """[ 1, 2 ]""", [], "-c FILE: not a valid config file" },
        { [], """{ "server_port": 8388, """, [], "-c FILE: not a valid config file" },
        { ["--password-env", "NOT_SET_ANYWHERE"], "", [], "--password-env: environment variable NOT_SET_ANYWHERE is not set" },
        { ["--password-env", "SET_BUT_EMPTY"], "", new() { ["SET_BUT_EMPTY"] = "" }, "--password-env: environment variable SET_BUT_EMPTY is empty; set it to the password, or give the password with -k or SHADOWSOCKS_PASSWORD" },
        { ["-m", "aes-256-gmc"], "", [], "-m: unknown method 'aes-256-gmc'" },
        { ["-t"], "", [], "-t: needs a value after it (see shadowsocks server --help)" },
        { [], """{ "timeout": null }""", [], "timeout: in FILE, expected a single value, not a list, an object or null (leave the key out for the default)" },
        { [], """{ "method": true }""", [], "method: in FILE, expected text, not true; put it in quotes (\"true\") if that is meant" },
        { [], """{ "server": [ "127.0.0.1", false ] }""", [], "server.1: in FILE, expected text, not false" },
        { [], """{ "server": { "listen": "127.0.0.1" } }""", [], "server: in FILE, expected a comma-separated string or an array of strings" },
        { [], """{ "telemetry": "console" }""", [], "telemetry: in FILE, expected an object, { \"traces\": ..., \"otlp_endpoint\": ..., \"otlp_protocol\": ..., \"metrics_listen\": ... }" },
        { [], """{ "telemetry": { "trace": "/tmp/traces" } }""", [], "telemetry.trace: in FILE, unknown setting; use traces, otlp_endpoint, otlp_protocol or metrics_listen" },
    };

    [Theory]
    [MemberData(nameof(InvalidFields))]
    public void InvalidField_OneLineNamingWhereItCameFrom(string[] flags, string json, Dictionary<string, string?> environment, string expected)
    {
        string[] args = ["-p", "8388", "-k", "pw", .. flags];
        if (json.Length > 0)
        {
            File.WriteAllText(_file, json);
            args = [.. args, "-c", _file];
        }

        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", args, environment));
        Assert.StartsWith(expected.Replace("FILE", _file, StringComparison.Ordinal), error.Message);
        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain("LineNumber", error.Message, StringComparison.Ordinal); // the JSON reader's own position, counted from 0
    }

    [Fact]
    public void APasswordGivenAsJsonTrue_IsRefused_NotTakenAsTheText()
    {
        // The JSON provider keeps true as "True": taken as is, it was another key than ss-libev's (which refuses the file).
        File.WriteAllText(_file, """{ "server_port": 8388, "password": true, "fast_open": true }""");
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", _file]));
        Assert.Equal($"password: in {_file}, expected text, not true; put it in quotes (\"true\") if that is meant", error.Message);

        File.WriteAllText(_file, """{ "server_port": 8388, "password": "true", "fast_open": true }""");
        var quoted = TestSettings.Build("server", ["-c", _file]);
        Assert.Equal(KeyDerivation.MasterKeyFromPassword(quoted.Relay.Cipher, "true"), quoted.Relay.MasterKey);
        Assert.True(quoted.Relay.FastOpen); // a switch still takes JSON true
    }

    [Fact]
    public void AConfigPathThatIsADirectory_IsRefusedWithOneLine_SayingSo()
    {
        var directory = Path.GetDirectoryName(_file)!;
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", directory]));
        Assert.Equal($"-c {directory}: is a directory; give the config file in it (e.g. -c {Path.Combine(directory, "config.json")})", error.Message);
    }

    [Fact]
    public void AnEmptyConfigFile_IsRefusedWithOneLine_SayingWhatGoesInIt()
    {
        File.WriteAllText(_file, "");
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", _file]));
        Assert.StartsWith($"-c {_file}: the config file is empty; it holds one JSON object of shadowsocks keys", error.Message);
    }

    [Fact]
    public void ConfigKeysNotUsedHere_AreWarnedAbout_OneLineEach_TheHarmlessOnesQuietly()
    {
        File.WriteAllText(_file, """
            { "server_port": 8388, "password": "pw", "sever_port": 1, "port_password": { "8389": "other" },
              "use_syslog": true, "workdir": "/tmp", "pipeline": { "udp": { "max_parallelism": 2 } } }
            """);
        var warnings = TestSettings.Build("server", ["-c", _file]).Warnings;
        Assert.Equal(
            [
                $"port_password: in {_file}, several ports with their own passwords are ss-manager's; this server serves server_port with password (ignored)",
                $"sever_port: in {_file}, not a setting this program knows (ignored); did you mean \"server_port\"?",
            ],
            warnings);
    }

    [Theory]
    [InlineData("pasword", "password")]
    [InlineData("locl_port", "local_port")]
    [InlineData("SEVER_PORT", "server_port")]
    [InlineData("acls", "acl")]
    public void AConfigKeyOneOrTwoEditsFromAKnownOne_IsAskedAbout(string typo, string meant)
    {
        File.WriteAllText(_file, $$"""{ "server_port": 8388, "password": "pw", "{{typo}}": "1" }""");
        Assert.Equal(
            [$"{typo}: in {_file}, not a setting this program knows (ignored); did you mean \"{meant}\"?"],
            TestSettings.Build("server", ["-c", _file]).Warnings);
    }

    [Theory]
    [InlineData("traces", "telemetry")]
    [InlineData("OTLP_Endpoint", "telemetry")]
    [InlineData("read_budget_mib", "pipeline")]
    public void AConfigKeyThatExistsOnlyNested_GivenAtTheTopLevel_IsPointedToWhereItGoes(string key, string parent)
    {
        File.WriteAllText(_file, $$"""{ "server_port": 8388, "password": "pw", "{{key}}": "1" }""");
        var nested = key.ToLowerInvariant();
        Assert.Equal(
            [$"{key}: in {_file}, not a top-level setting (ignored); did you mean \"{parent}.{nested}\", i.e. \"{parent}\": {{ \"{nested}\": ... }}?"],
            TestSettings.Build("server", ["-c", _file]).Warnings);
    }

    [Theory]
    [InlineData("tls")]          // two edits from acl, but a short key: no guess
    [InlineData("tunnel_addr")]  // three edits from tunnel_address
    public void AConfigKeyFarFromEveryKnownOne_GetsNoGuess_ButTheHelp(string key)
    {
        File.WriteAllText(_file, $$"""{ "server_port": 8388, "password": "pw", "{{key}}": "1" }""");
        Assert.Equal(
            [$"{key}: in {_file}, not a setting this program knows (ignored); see shadowsocks server --help"],
            TestSettings.Build("server", ["-c", _file]).Warnings);
    }

    [Fact]
    public void AMissingRequiredKey_CarriesTheUnknownKeyLines_ToBeSaidBeforeIt()
    {
        // The misspelt key is why server_port is missing: the refusal must not hide the line that says so.
        File.WriteAllText(_file, """{ "sever_port": 8388, "password": "pw" }""");
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", _file]));
        Assert.Equal("-p: missing server port (or \"server_port\" in the config file)", error.Message);
        Assert.Equal([$"sever_port: in {_file}, not a setting this program knows (ignored); did you mean \"server_port\"?"], error.Warnings);
    }

    [Fact]
    public void AServersEntryWithoutAHost_IsNamed()
    {
        File.WriteAllText(_file, """{ "local_port": 1080, "password": "pw", "servers": [ { "server": "192.0.2.1", "server_port": 8388 }, { "sever": "192.0.2.2", "server_port": 8388 } ] }""");
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-c", _file]));
        Assert.StartsWith($"servers.1: in {_file}, has no \"server\"; give each entry its server's host", error.Message);
    }

    [Fact]
    public void AServersHostThatIsNoAddressToListenOn_NamesTheFile()
    {
        // A server listens on its servers entry's host: a name there was refused as "server:", not saying where it was.
        File.WriteAllText(_file, """{ "server_port": 8388, "password": "pw", "servers": [ { "server": "example.com" } ] }""");
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", _file]));
        Assert.StartsWith($"servers: in {_file}, 'example.com' is not an IP address to listen on", error.Message);
    }

    [Fact]
    public void WithoutAConfigFile_NoWarnings() =>
        Assert.Empty(TestSettings.Build("server", ["-p", "8388", "-k", "pw"], new() { ["SHADOWSOCKS_SOMETHING_ELSE"] = "1" }).Warnings);

    [Theory]
    [InlineData("server")]
    [InlineData("local")]
    public void TheTunnelsDestination_OnTheCommandLineOfAnotherVerb_IsOneLine_NotSilentlyIgnored(string verb)
    {
        // ss-server and ss-local refuse -L; a config file shared by the tunnel and the others stays quiet.
        var warnings = TestSettings.Build(verb, ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-k", "pw", "-L", "1.1.1.1:53"]).Warnings;
        Assert.Equal(["-L: only a tunnel has a fixed destination (ignored); for a port forward run shadowsocks tunnel"], warnings);

        File.WriteAllText(_file, """{ "server": "127.0.0.1", "server_port": 8388, "local_port": 1080, "password": "pw", "tunnel_address": "1.1.1.1:53" }""");
        Assert.Empty(TestSettings.Build(verb, ["-c", _file]).Warnings);
    }

    [Theory]
    [InlineData("server", "a server waits for a client's header as long as for any of its bytes, the idle timeout (-t)")]
    [InlineData("tunnel", "a tunnel's clients send no handshake")]
    public void TheHandshakeTimeout_OnTheCommandLineOfAServerOrTunnel_IsOneLine_NotSilentlyIgnored(string verb, string why)
    {
        // Only a local's SOCKS5 handshake is timed by it; a config file shared with the local stays quiet.
        string[] args = ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-k", "pw", "-L", "1.1.1.1:53"];
        if (verb == "server")
        {
            args = ["-s", "127.0.0.1", "-p", "8388", "-k", "pw"];
        }

        var warnings = TestSettings.Build(verb, [.. args, "--handshake-timeout", "5"]).Warnings;
        Assert.Equal([$"--handshake-timeout: only a local has a SOCKS5 handshake to time (ignored); {why}"], warnings);

        File.WriteAllText(_file, """{ "server": "127.0.0.1", "server_port": 8388, "local_port": 1080, "password": "pw", "tunnel_address": "1.1.1.1:53", "handshake_timeout": 5 }""");
        Assert.Empty(TestSettings.Build(verb, ["-c", _file]).Warnings);
        Assert.Empty(TestSettings.Build("local", ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-k", "pw", "--handshake-timeout", "5"]).Warnings);
    }

    [Theory]
    [InlineData("server")]
    [InlineData("tunnel")]
    public void AHandshakeTimeoutOutOfRange_InAFileSharedWithALocal_IsTheLocalsToRefuse(string verb)
    {
        // A server or tunnel does not use it, so a value only the local would refuse does not stop them; the local
        // still names the field.
        File.WriteAllText(_file, """{ "server": "127.0.0.1", "server_port": 8388, "local_port": 1080, "password": "pw", "tunnel_address": "1.1.1.1:53", "handshake_timeout": 0 }""");
        var settings = TestSettings.Build(verb, ["-c", _file]);
        Assert.Empty(settings.Warnings);
        Assert.Equal(TimeSpan.FromSeconds(HostSettings.DefaultHandshakeTimeoutSeconds), settings.Relay.HandshakeTimeout);

        var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-c", _file]));
        Assert.Contains("handshake_timeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RustStyleServersList_GivesTheMethodAndPassword_WhenTheTopLevelHasNone()
    {
        File.WriteAllText(_file, """
            { "servers": [ { "server": "192.0.2.1", "server_port": 8388, "password": "rust-pw", "method": "aes-128-gcm" },
                           { "server": "192.0.2.2", "server_port": 8389, "password": "rust-pw", "method": "aes-128-gcm" } ],
              "local_port": 1080 }
            """);
        var relay = TestSettings.Build("local", ["-c", _file]).Relay;
        Assert.Equal("aes-128-gcm", relay.Cipher.Name);
        Assert.Equal(KeyDerivation.MasterKeyFromPassword(relay.Cipher, "rust-pw"), relay.MasterKey);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.2"), 8389), Assert.Single(relay.FallbackServers));
    }

    [Theory]
    [InlineData("\"password\": \"other-pw\"", "servers.1.password: in FILE, differs from the password in use")]
    [InlineData("\"method\": \"chacha20-ietf-poly1305\"", "servers.1.method: in FILE, differs from the method in use")]
    public void RustStyleServersList_WithAnotherSecret_IsRefused_NeverEchoingIt(string second, string expected)
    {
        File.WriteAllText(_file, $$"""
            { "servers": [ { "server": "192.0.2.1", "server_port": 8388, "password": "rust-pw", "method": "aes-128-gcm" },
                           { "server": "192.0.2.2", "server_port": 8389, {{second}} } ],
              "local_port": 1080 }
            """);
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-c", _file]));
        Assert.StartsWith(expected.Replace("FILE", _file, StringComparison.Ordinal), error.Message);
        Assert.DoesNotContain("other-pw", error.Message);
    }

    [Fact]
    public void RustStyleServersList_AnUnknownMethodNamesItsEntry()
    {
        File.WriteAllText(_file, """{ "servers": [ { "server": "192.0.2.1", "server_port": 8388, "password": "pw", "method": "aes-256-gmc" } ], "local_port": 1080 }""");
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-c", _file]));
        Assert.StartsWith($"servers.0.method: in {_file}, unknown method 'aes-256-gmc'", error.Message);
    }

    [Fact]
    public void ServerWithTheLocalsLocalAddress_IsWarnedThatItSendsFromLoopback()
    {
        // A client's config reused for the server: ss-server (and this server) would send every connection from 127.0.0.1.
        File.WriteAllText(_file, """{ "server": "0.0.0.0", "server_port": 8388, "local_address": "127.0.0.1", "local_port": 1080, "password": "pw" }""");
        var settings = TestSettings.Build("server", ["-c", _file]);
        Assert.Equal(IPAddress.Loopback, settings.Relay.OutboundAddress);
        Assert.Equal(
            [$"local_address: in {_file}, 127.0.0.1 is a loopback address: the server sends from it (as ss-server does with -b), so it reaches only this machine; local_address is the local's setting, remove it from the server's"],
            settings.Warnings);
    }

    [Fact]
    public void AConfigFileWhoseNameStartsWithADot_IsRead()
    {
        // ss-manager writes .shadowsocks_PORT.conf; the configuration library's default file provider skips dot-files.
        var directory = Directory.CreateTempSubdirectory("ss-dot-");
        try
        {
            var file = Path.Combine(directory.FullName, ".shadowsocks_8388.conf");
            File.WriteAllText(file, """{ "server_port": 8388, "password": "dot", "method": "aes-128-gcm" }""");
            var relay = TestSettings.Build("server", ["-c", file]).Relay;
            Assert.Equal(8388, relay.Listen.Port);
            Assert.Equal("aes-128-gcm", relay.Cipher.Name);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void MissingConfigFile_IsAUsageError()
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", "/nonexistent/config.json"]));
        Assert.StartsWith("-c /nonexistent/config.json: cannot read the config file", error.Message);
    }

    [Theory]
    [InlineData("""{ "server_port": 8388, "password": "pw", "timeout": [5, 7] }""", "timeout: in FILE, expected a single value, not a list, an object or null")]
    [InlineData("""{ "server_port": 8388, "password": "pw", "timeout": {} }""", "timeout: in FILE, expected a single value, not a list, an object or null")]
    [InlineData("""{ "server_port": [8388, 9], "password": "pw" }""", "server_port: in FILE, expected a single value")]
    [InlineData("""{ "server_port": 8388, "password": "pw", "method": { "name": "aes-256-gcm" } }""", "method: in FILE, expected a single value")]
    [InlineData("""{ "server_port": 8388, "password": "pw", "method": "" }""", "method: in FILE, '' is not a method")]
    [InlineData("""{ "server": "", "server_port": 8388, "password": "pw" }""", "server: in FILE, '' is not an address")]
    [InlineData("""{ "server_port": 8388,\n "server_port": 9, "password": "pw" }""", "-c FILE: not a valid config file (one JSON object of shadowsocks keys): A duplicate key 'server_port'")]
    [InlineData("""{ "server_port": 8388,\n "password": "pw" """, "-c FILE: not a valid config file (one JSON object of shadowsocks keys): line 2:")]
    public void AValueOfTheWrongShape_IsRefusedWithOneLine_NeverReadAsSomethingElse(string json, string expected)
    {
        // A list where one value goes was read as its first element, an empty method as the default one, and an empty
        // server address as every address (0.0.0.0); a syntax error lost its line.
        File.WriteAllText(_file, json.Replace("\\n", "\n", StringComparison.Ordinal));
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", _file]));
        Assert.StartsWith(expected.Replace("FILE", _file, StringComparison.Ordinal), error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void AnEmptyConfigPath_IsRefusedWithOneLine()
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", ""]));
        Assert.StartsWith("-c: the config file's path is empty", error.Message);
    }

    [Fact]
    public void TheCommandLinesPassword_WinsOverTheFilesKey_AsEveryLayerDoes()
    {
        File.WriteAllText(_file, """{ "server_port": 8388, "method": "aes-256-gcm", "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" }""");
        var fromFile = TestSettings.Build("server", ["-c", _file]).Relay;
        var withPassword = TestSettings.Build("server", ["-c", _file, "-k", "pw"]).Relay;
        var fromEnvironment = TestSettings.Build("server", ["-c", _file], new() { ["SHADOWSOCKS_PASSWORD"] = "env-pw" }).Relay;

        Assert.Equal(Enumerable.Range(0, 32).Select(static i => (byte)i), fromFile.MasterKey);
        Assert.Equal(KeyDerivation.MasterKeyFromPassword(withPassword.Cipher, "pw"), withPassword.MasterKey);
        Assert.Equal(KeyDerivation.MasterKeyFromPassword(fromEnvironment.Cipher, "env-pw"), fromEnvironment.MasterKey);
    }

    [Fact]
    public void RustStyleServersList_TheMethodInUseInAnyCase_IsTheSameMethod()
    {
        File.WriteAllText(_file, """{ "local_port": 1080, "servers": [ { "server": "192.0.2.1", "server_port": 8388, "method": "AES-256-GCM", "password": "pw" } ] }""");
        Assert.Equal("aes-256-gcm", TestSettings.Build("local", ["-c", _file]).Relay.Cipher.Name);
    }

    [Fact]
    public void AConfigFileOfMoreThanAMebibyte_IsRefused()
    {
        File.WriteAllText(_file, "{ \"server_port\": 8388, \"password\": \"pw\", \"padding\": \"" + new string('x', 1024 * 1024) + "\" }");
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", _file]));
        Assert.StartsWith($"-c {_file}: the config file is 1024 KiB; a config file is at most 1024 KiB", error.Message);
    }

    [Fact]
    public void AConfigFileNotInUtf8_IsRefusedWithItsLine_NeverReadWithReplacementCharacters()
    {
        // A Latin-1 password: read as text, its bytes became U+FFFD, and the key another than ss-libev derives from them.
        File.WriteAllBytes(_file, [.. "{\n  \"server_port\": 8388,\n  \"password\": \"p"u8, 0xE4, .. "ss\"\n}"u8]);
        var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", _file]));
        Assert.Equal($"-c {_file}: line 3 is not UTF-8 text; save the file as UTF-8", error.Message);
    }
}
