using Shadowsocks.Pipeline.Hosts.Service;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

public sealed class OpenFileBudgetTests
{
    [Fact]
    public void WhatFits_IsLeftAlone() =>
        Assert.Equal((10_000, (string?)null), OpenFileBudget.Fit(10_000, 1_048_576, 4096, explicitlySet: true));

    [Fact]
    public void AnExplicitLimitThatDoesNotFit_IsFitted_AndTheUserIsToldHowToRaiseIt()
    {
        var (fitted, warning) = OpenFileBudget.Fit(1000, 512, 0, explicitlySet: true);
        Assert.Equal((512 - OpenFileBudget.Reserve) / 2, fitted);
        Assert.NotNull(warning);
        Assert.Contains("max_connections 1000 needs about 2256 open files but the limit is 512", warning);
        Assert.Contains($"at most {fitted} connections", warning);
        Assert.Contains("-n / \"nofile\"", warning);
    }

    [Fact]
    public void TheDefault_IsFittedQuietly() =>
        Assert.Equal(((1024 - OpenFileBudget.Reserve) / 2, (string?)null), OpenFileBudget.Fit(10_000, 1024, 0, explicitlySet: false));

    [Fact]
    public void UdpAssociations_TakeTheirShareFirst() =>
        Assert.Equal((20_000 - OpenFileBudget.Reserve - 4096) / 2, OpenFileBudget.Fit(10_000, 20_000, 4096, explicitlySet: false).MaxConnections);

    [Fact]
    public void TheDefault_FittedDownToTheMinimum_IsSaid_NamingUdpsShare()
    {
        // A server with -u under a limit of 4096 (LimitNOFILE=4096): UDP's 4096 associations take it all.
        var (fitted, warning) = OpenFileBudget.Fit(10_000, 4096, 4096, explicitlySet: false);
        Assert.Equal(OpenFileBudget.Minimum, fitted);
        Assert.NotNull(warning);
        Assert.Contains("max_connections 10000 (the default) needs about 24352 open files but the limit is 4096", warning);
        Assert.Contains("udp_max_associations 4096", warning);
        Assert.Contains($"at most {OpenFileBudget.Minimum} connections at once", warning);
        Assert.Contains("-n / \"nofile\"", warning);
    }

    [Fact]
    public void HoweverLowTheLimit_SomeConnectionsRemain() =>
        Assert.Equal(OpenFileBudget.Minimum, OpenFileBudget.Fit(10_000, 256, 4096, explicitlySet: false).MaxConnections);
}
