using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Tests.Hosts.Configuration;

/// <summary>
/// SIP023 in the settings: a client's <c>iPSK:uPSK</c> password, a server's <c>users</c>, and one line for each
/// thing that cannot work.
/// </summary>
public sealed class MultiUserSettingsTests
{
    private const string Method = "2022-blake3-aes-256-gcm";

    private static readonly byte[] s_identity = Key(1);
    private static readonly byte[] s_alice = Key(2);
    private static readonly byte[] s_bob = Key(3);

    [Fact]
    public void AClientsChainedPassword_GivesTheIdentityKeys_AndTheUsersKeyLast()
    {
        var relay = TestSettings.Build("local", ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-m", Method, "-k", $"{B64(s_identity)}:{B64(s_alice)}"]).Relay;
        Assert.Equal(s_alice, relay.MasterKey);
        Assert.Equal([s_identity], relay.IdentityKeys);

        var twoHops = TestSettings.Build("tunnel", ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-L", "1.1.1.1:53", "-m", Method, "--key", $"{B64(s_bob)}:{B64(s_identity)}:{B64(s_alice)}"]).Relay;
        Assert.Equal(s_alice, twoHops.MasterKey);
        Assert.Equal([s_bob, s_identity], twoHops.IdentityKeys);

        // SIP002 with the 2022 methods: the percent-encoded userinfo method:iPSK:uPSK.
        var url = $"ss://{Method}:{Uri.EscapeDataString(B64(s_identity))}:{Uri.EscapeDataString(B64(s_alice))}@127.0.0.1:8388";
        var fromUrl = TestSettings.Build("local", ["--server-url", url, "-l", "1080"]).Relay;
        Assert.Equal(s_alice, fromUrl.MasterKey);
        Assert.Equal([s_identity], fromUrl.IdentityKeys);

        var single = TestSettings.Build("local", ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-m", Method, "-k", B64(s_alice)]).Relay;
        Assert.Empty(single.IdentityKeys);

        // Another method's password may hold a colon: it is a passphrase.
        var passphrase = TestSettings.Build("local", ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-m", "aes-256-gcm", "-k", "a:b"]).Relay;
        Assert.Empty(passphrase.IdentityKeys);
        Assert.Equal(32, passphrase.MasterKey.Length);
    }

    [Fact]
    public void AChainedPassword_ThatCannotWork_IsOneLineNamingIt()
    {
        var chacha = Refused("local", ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-m", "2022-blake3-chacha20-poly1305", "-k", $"{B64(s_identity)}:{B64(s_alice)}"]);
        Assert.StartsWith("-k: ", chacha);
        Assert.Contains("2022 AES methods only", chacha);

        var badPart = Refused("local", ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-m", Method, "-k", $"{B64(s_identity)}:{B64(new byte[16])}"]);
        Assert.StartsWith("-k: ", badPart);
        Assert.Contains("32 bytes", badPart);
        Assert.Contains("part 2 of 2", badPart);

        var server = Refused("server", ["-p", "8388", "-m", Method, "-k", $"{B64(s_identity)}:{B64(s_alice)}"]);
        Assert.StartsWith("-k: ", server);
        Assert.Contains("\"users\"", server);
    }

    [Fact]
    public void AServersUsers_FromTheConfigFile_TopLevelOrInItsServersEntry()
    {
        var users = $"[{{\"name\": \"alice\", \"password\": \"{B64(s_alice)}\"}}, {{\"name\": \"bob\", \"password\": \"{B64(s_bob)}\"}}]";
        var relay = WithConfig($"{{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"method\": \"{Method}\", \"password\": \"{B64(s_identity)}\", \"users\": {users}}}");
        Assert.Equal(s_identity, relay.MasterKey);
        Assert.Equal(["alice", "bob"], relay.Users.Select(u => u.Name));
        Assert.Equal(s_bob, relay.Users[1].Key);

        // shadowsocks-rust's form: the users inside the servers entry that carries the method and password.
        var rust = WithConfig($"{{\"server_port\": 8388, \"servers\": [{{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"method\": \"{Method}\", \"password\": \"{B64(s_identity)}\", \"users\": {users}}}]}}");
        Assert.Equal(2, rust.Users.Count);

        var none = WithConfig($"{{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"method\": \"{Method}\", \"password\": \"{B64(s_identity)}\"}}");
        Assert.Empty(none.Users);
    }

    [Theory]
    [InlineData("aes-256-gcm", "[{\"name\": \"alice\", \"password\": \"ALICE\"}]", "only 2022-blake3-aes-128-gcm and 2022-blake3-aes-256-gcm")]
    [InlineData("2022-blake3-chacha20-poly1305", "[{\"name\": \"alice\", \"password\": \"ALICE\"}]", "not 2022-blake3-chacha20-poly1305")]
    [InlineData(Method, "\"alice\"", "expected [{\"name\"")]
    [InlineData(Method, "[]", "the list is empty; give at least one user, as [{\"name\"")]
    [InlineData(Method, "[{\"password\": \"ALICE\"}]", "missing \"name\"")]
    [InlineData(Method, "[{\"name\": \"alice\"}]", "missing \"password\"")]
    [InlineData(Method, "[{\"name\": \"alice\", \"password\": \"not a key\"}]", "not valid base64")]
    [InlineData(Method, "[{\"name\": \"alice\", \"password\": \"ALICE\"}, {\"name\": \"alice\", \"password\": \"BOB\"}]", "name of another user")]
    [InlineData(Method, "[{\"name\": \"alice\", \"password\": \"ALICE\"}, {\"name\": \"bob\", \"password\": \"ALICE\"}]", "user 'alice''s key too")]
    public void BadUsers_AreOneLineNamingTheField(string method, string users, string expected)
    {
        var password = method == "aes-256-gcm" ? "passphrase" : B64(s_identity);
        var json = $"{{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"method\": \"{method}\", \"password\": \"{password}\", \"users\": {users.Replace("ALICE", B64(s_alice)).Replace("BOB", B64(s_bob))}}}";
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, json);
            var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", path]));
            Assert.Contains(expected, error.Message);
            Assert.Contains("users", error.Message);
            Assert.Contains(path, error.Message);
            Assert.DoesNotContain('\n', error.Message);
            Assert.DoesNotContain(B64(s_alice), error.Message); // keys are never echoed
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TheFirstServersEntrysUsers_AreRead_HoweverItsKeyIsGiven()
    {
        var users = $"[{{\"name\": \"alice\", \"password\": \"{B64(s_alice)}\"}}]";
        var byKey = WithConfig($"{{\"server_port\": 8388, \"servers\": [{{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"method\": \"{Method}\", \"key\": \"{B64(s_identity)}\", \"users\": {users}}}]}}");
        Assert.Equal(["alice"], byKey.Users.Select(u => u.Name));

        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, $"{{\"server_port\": 8388, \"servers\": [{{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"method\": \"{Method}\", \"users\": {users}}}]}}");
            var keyOnTheCommandLine = TestSettings.Build("server", ["-c", path, "-k", B64(s_identity)]).Relay;
            Assert.Equal(["alice"], keyOnTheCommandLine.Users.Select(u => u.Name));
            Assert.Equal(s_identity, keyOnTheCommandLine.MasterKey);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("second")]
    [InlineData("both")]
    public void UsersThatWouldBeIgnored_AreRefused(string where)
    {
        var users = $"[{{\"name\": \"alice\", \"password\": \"{B64(s_alice)}\"}}]";
        var json = where == "second"
            ? $"{{\"server_port\": 8388, \"method\": \"{Method}\", \"password\": \"{B64(s_identity)}\", \"servers\": [{{\"server\": \"127.0.0.1\", \"server_port\": 8388}}, {{\"server\": \"::1\", \"server_port\": 8388, \"users\": {users}}}]}}"
            : $"{{\"server_port\": 8388, \"users\": {users}, \"servers\": [{{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"method\": \"{Method}\", \"password\": \"{B64(s_identity)}\", \"users\": {users}}}]}}";
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, json);
            var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", path]));
            Assert.Contains(where == "second" ? "servers.1.users" : "servers.0.users", error.Message);
            Assert.Contains("one", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ABlankUserName_IsRefused()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, $"{{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"method\": \"{Method}\", \"password\": \"{B64(s_identity)}\", \"users\": [{{\"name\": \"  \", \"password\": \"{B64(s_alice)}\"}}]}}");
            var error = Assert.Throws<UsageException>(() => TestSettings.Build("server", ["-c", path]));
            Assert.Contains("missing \"name\"", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AChainOfMoreThanFourIdentityKeys_IsRefused()
    {
        var five = string.Join(':', Enumerable.Range(10, 5).Select(i => B64(Key(i))));
        var error = Refused("local", ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-m", Method, "-k", $"{five}:{B64(s_alice)}"]);
        Assert.Contains("at most 4", error);
        var four = string.Join(':', Enumerable.Range(10, 4).Select(i => B64(Key(i))));
        Assert.Equal(4, TestSettings.Build("local", ["-s", "127.0.0.1", "-p", "8388", "-l", "1080", "-m", Method, "-k", $"{four}:{B64(s_alice)}"]).Relay.IdentityKeys.Count);
    }

    [Fact]
    public void UsersOnALocal_AreRefused_WithTheClientsForm()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, $"{{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"local_port\": 1080, \"method\": \"{Method}\", \"password\": \"{B64(s_identity)}\", \"users\": [{{\"name\": \"a\", \"password\": \"{B64(s_alice)}\"}}]}}");
            var error = Assert.Throws<UsageException>(() => TestSettings.Build("local", ["-c", path]));
            Assert.Contains("only a server has users", error.Message);
            Assert.Contains("iPSK:uPSK", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static Shadowsocks.Pipeline.Core.Configuration.RelayOptions WithConfig(string json)
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, json);
            var settings = TestSettings.Build("server", ["-c", path]);
            Assert.DoesNotContain(settings.Warnings, w => w.Contains("users", StringComparison.Ordinal)); // a key this program knows
            return settings.Relay;
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string Refused(string verb, string[] args)
    {
        var error = Assert.Throws<UsageException>(() => TestSettings.Build(verb, args));
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }

    private static byte[] Key(int seed) => [.. Enumerable.Range(seed, 32).Select(i => (byte)i)];

    private static string B64(byte[] key) => Convert.ToBase64String(key);
}
