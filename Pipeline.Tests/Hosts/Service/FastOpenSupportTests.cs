using Shadowsocks.Pipeline.Hosts.Service;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

public sealed class FastOpenSupportTests
{
    [Theory]
    [InlineData("server", "3\n")]
    [InlineData("server", "2")]
    [InlineData("local", "1\n")]
    [InlineData("tunnel", "3")]
    public void WhenTheKernelAllowsThatSide_NothingIsSaid(string verb, string sysctl) =>
        Assert.Null(FastOpenSupport.Warning(verb, sysctl));

    [Fact]
    public void AServerOnDebiansDefault_IsToldTheSysctlAndTheValueThatFixesIt()
    {
        var warning = FastOpenSupport.Warning("server", "1\n");
        Assert.NotNull(warning);
        Assert.Contains("net.ipv4.tcp_fastopen is 1", warning);
        Assert.Contains("accepting data in the SYN", warning);
        Assert.Contains("sysctl -w net.ipv4.tcp_fastopen=3", warning);
    }

    [Theory]
    [InlineData("local", "0")]
    [InlineData("tunnel", "2")]
    public void ALocalWithSendingOff_IsToldToo(string verb, string sysctl)
    {
        var warning = FastOpenSupport.Warning(verb, sysctl);
        Assert.NotNull(warning);
        Assert.Contains("sending data in the SYN", warning);
        Assert.Contains("sysctl -w net.ipv4.tcp_fastopen=3", warning);
    }

    [Fact]
    public void AnUnreadableSetting_IsSaid() =>
        Assert.Contains("cannot read /proc/sys/net/ipv4/tcp_fastopen", FastOpenSupport.Warning("server", null));
}
