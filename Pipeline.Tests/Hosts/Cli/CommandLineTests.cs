using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Tests.Hosts.Cli;

/// <summary>Each verb's --help lists the flags that mean something to it; the others are still accepted.</summary>
public sealed class CommandLineTests
{
    [Theory]
    [InlineData("local", "--local-port", true)]
    [InlineData("local", "--tunnel-address", false)]
    [InlineData("local", "--forbidden-ip", false)]
    [InlineData("local", "--manager-address", false)]
    [InlineData("tunnel", "--tunnel-address", true)]
    [InlineData("tunnel", "--local-port", true)]
    [InlineData("server", "--forbidden-ip", true)]
    [InlineData("server", "--manager-address", true)]
    [InlineData("server", "--local-port", false)]
    [InlineData("server", "--tunnel-address", false)]
    [InlineData("server", "--mtu", false)] // compatibility only, for every verb
    [InlineData("local", "--handshake-timeout", true)]
    [InlineData("server", "--handshake-timeout", false)] // the header wait is the idle timeout (probe resistance)
    [InlineData("tunnel", "--handshake-timeout", false)] // no handshake
    [InlineData("server", "--connect-timeout", true)]
    [InlineData("tunnel", "--connect-timeout", true)]
    public void Help_ListsTheFlagsOfTheVerb(string verb, string flag, bool listed)
    {
        var command = CommandLine.Build((_, _) => Task.FromResult(0)).Subcommands.Single(c => c.Name == verb);
        var option = command.Options.Single(o => o.Name == flag);
        Assert.Equal(listed, !option.Hidden);
    }

    [Theory]
    [InlineData("local", "default chacha20-ietf-poly1305")]
    [InlineData("demo", "default aes-256-gcm")] // what DemoVerb runs without -m
    [InlineData("genkey", "required")] // GenKeyVerb refuses to guess
    public void Help_MethodNamesTheVerbsOwnDefault(string verb, string expected)
    {
        var command = CommandLine.Build((_, _) => Task.FromResult(0)).Subcommands.Single(c => c.Name == verb);
        Assert.Contains(expected, command.Options.Single(o => o.Name == "--method").Description, StringComparison.Ordinal);
    }

    [Fact]
    public void AFlagNotListedForAVerb_IsStillAccepted()
    {
        var parsed = CommandLine.ParseVerb("server", ["-p", "8388", "-l", "1080", "-L", "1.1.1.1:53"]);
        Assert.Equal("server", parsed.Verb);
        Assert.Equal("1.1.1.1:53", parsed.Value(Flags.TunnelAddress)); // the settings then warn that it is ignored
    }
}
