using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;

namespace Shadowsocks.Pipeline.Tests.Hosts.Configuration;

/// <summary>Settings from a verb's command line through the real parser, with a given environment (none by default).</summary>
internal static class TestSettings
{
    public static HostSettings Build(string verb, string[] args, Dictionary<string, string?>? environment = null) =>
        HostSettings.Build(verb, CommandLine.ParseVerb(verb, args), environment ?? []);
}
