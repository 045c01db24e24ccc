using System.Net;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Core.Dns;

/// <summary>resolv.conf's <c>options timeout:N attempts:N</c> and <c>RES_OPTIONS</c> over them, read as glibc reads them, and what the resolver does with them.</summary>
public sealed class ResolvConfTests : IDisposable
{
    private readonly string _resolvConf = Path.GetTempFileName();
    private readonly string _emptyHosts = Path.GetTempFileName();

    public void Dispose()
    {
        File.Delete(_resolvConf);
        File.Delete(_emptyHosts);
    }

    [Theory]
    [InlineData("options timeout:1 attempts:3", 1, 3)]
    [InlineData("options  rotate\ttimeout:7 ndots:2 edns0 # attempts:4", 7, null)] // unknown options and a comment pass by
    [InlineData("options timeout:60 attempts:9", 30, 5)] // glibc's bounds: RES_MAXRETRANS, RES_MAXRETRY
    [InlineData("options timeout:99999999999 attempts:0005", 30, 5)]
    [InlineData("options timeout:0 attempts:0", null, null)] // bad values are ignored
    [InlineData("options timeout:-1 attempts:two timeout: attempts:2x", null, null)]
    [InlineData("option timeout:1", null, null)]
    [InlineData("nameserver 10.0.0.1 timeout:1", null, null)]
    public void Options_AsGlibcReadsThem(string line, int? timeout, int? attempts) =>
        Assert.Equal((timeout, attempts), ResolvConf.ParseOptions(["nameserver 10.0.0.53", line]));

    [Fact]
    public void Options_ALaterOneOverridesAnEarlier() =>
        Assert.Equal((2, 1), ResolvConf.ParseOptions(["options timeout:5 attempts:4", "options attempts:1", "options timeout:2 timeout:bad"]));

    [Theory]
    [InlineData("timeout:2", 2, 4)] // over the file's timeout:5; its attempts:4 stays
    [InlineData(" attempts:1\ttimeout:3  ", 3, 1)]
    [InlineData("attempts:9 rotate", 5, 5)] // glibc's bound; an unknown option passes by
    [InlineData("timeout:0 attempts:x", 5, 4)] // bad values are ignored: the file's stay
    [InlineData("", 5, 4)]
    [InlineData(null, 5, 4)] // not set
    public void ResOptions_OverrideTheFilesOptions(string? resOptions, int? timeout, int? attempts) =>
        Assert.Equal((timeout, attempts), ResolvConf.ParseOptions(["options timeout:5 attempts:4"], resOptions));

    [Fact]
    public void ResOptions_ApplyWithoutAnOptionsLine() =>
        Assert.Equal((1, 2), ResolvConf.ParseOptions(["nameserver 10.0.0.53"], "timeout:1 attempts:2"));

    [Fact]
    public void ResOptions_AreAppliedOverTheFile_AsTheResolverReadsIt()
    {
        File.WriteAllLines(_resolvConf, ["nameserver 10.0.0.53", "nameserver 10.0.0.54", "options timeout:5 attempts:1"]);
        var applied = ResolvConf.Apply(new DnsResolverOptions { ResolvConfPath = _resolvConf, ResOptions = "attempts:2" });
        Assert.Equal(TimeSpan.FromSeconds(5), applied.AttemptTimeout); // the file's
        Assert.Equal(4, applied.Attempts); // RES_OPTIONS' 2 rounds over 2 servers
    }

    [Fact]
    public void WithoutOptions_TheResolversDefaultsStay()
    {
        File.WriteAllLines(_resolvConf, ["search example", "nameserver 10.0.0.53", "options ndots:3"]);
        var defaults = new DnsResolverOptions { ResolvConfPath = _resolvConf };
        var applied = ResolvConf.Apply(defaults);
        Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.53"), 53)], applied.Servers);
        Assert.Equal(defaults.AttemptTimeout, applied.AttemptTimeout);
        Assert.Equal(defaults.Attempts, applied.Attempts);
        Assert.Equal(defaults.TotalTimeout, applied.TotalTimeout);
    }

    [Fact]
    public void Attempts_AreRoundsOverTheServers_AndTheTotalDeadlineStays()
    {
        File.WriteAllLines(_resolvConf, ["nameserver 10.0.0.53", "nameserver 10.0.0.54", "options timeout:30 attempts:2"]);
        var applied = ResolvConf.Apply(new DnsResolverOptions { ResolvConfPath = _resolvConf });
        Assert.Equal(TimeSpan.FromSeconds(30), applied.AttemptTimeout);
        Assert.Equal(4, applied.Attempts); // 2 rounds over 2 servers
        Assert.Equal(TimeSpan.FromSeconds(8), applied.TotalTimeout);
    }

    [Fact]
    public async Task TheResolver_TakesTimeoutAndAttempts_FromResolvConf()
    {
        // resolv.conf's options were ignored: a lone silent server was asked 4 times (2 s, 4 s, then the rest of 8 s).
        // With "timeout:1 attempts:1": once, 1 s. A resolv.conf names port 53 only: the resolver's own reading is
        // checked (Apply, as the resolver calls it without servers of its own), then a fake server takes the place of
        // the file's server.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        File.WriteAllLines(_resolvConf, ["nameserver 127.0.0.1", "options timeout:1 attempts:1"]);
        var applied = ResolvConf.Apply(new DnsResolverOptions { ResolvConfPath = _resolvConf, HostsPath = _emptyHosts });
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 53)], applied.Servers);

        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = new DnsResolver(applied with { Servers = [silent.EndPoint] }, ProgramScheduler.Instance, TimeProvider.System);
        Assert.Empty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(2, silent.Queries); // A and AAAA, once
        Assert.Equal($"no answer from {silent.EndPoint} (1 attempt)", resolver.FailureReason("a.test"));
    }
}
