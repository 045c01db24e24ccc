using Shadowsocks.Pipeline.Hosts.Service;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

public sealed class OpenFileBudgetTests
{
    [Fact]
    public void WhatFits_IsLeftAlone() =>
        Assert.Equal((10_000, 4096, (string?)null), OpenFileBudget.Fit(10_000, 1_048_576, 4096, explicitlySet: true));

    [Fact]
    public void AnExplicitLimitThatDoesNotFit_IsFitted_AndTheUserIsToldHowToRaiseIt()
    {
        var (fitted, _, warning) = OpenFileBudget.Fit(1000, 512, 0, explicitlySet: true);
        Assert.Equal((512 - OpenFileBudget.Reserve) / 2, fitted);
        Assert.NotNull(warning);
        Assert.Contains("max_connections 1000 needs about 2256 open files but the limit is 512", warning);
        Assert.Contains($"at most {fitted} connections", warning);
        Assert.Contains("-n / \"nofile\"", warning);
    }

    [Fact]
    public void TheDefault_IsFittedQuietly() =>
        Assert.Equal(((1024 - OpenFileBudget.Reserve) / 2, 0, (string?)null), OpenFileBudget.Fit(10_000, 1024, 0, explicitlySet: false));

    [Fact]
    public void UdpAssociations_TakeTheirShareFirst_WhenItIsAQuarterOrLess() =>
        Assert.Equal((20_000 - OpenFileBudget.Reserve - 4096) / 2, OpenFileBudget.Fit(10_000, 20_000, 4096, explicitlySet: false).MaxConnections);

    [Fact]
    public void UnderALimitOfAFewThousand_UdpsDefaultShare_IsCutToAQuarter()
    {
        // A server with -u under LimitNOFILE=4096: UDP's default 4096 associations would take it all and leave TCP 16
        // connections at once (helper 34 saw 100 connections served 16 at a time, 3 to 21 s each, without a word).
        var (connections, udp, warning) = OpenFileBudget.Fit(10_000, 4096, 4096, explicitlySet: false);
        Assert.Equal((4096 - OpenFileBudget.Reserve) / 4, udp);
        Assert.Equal((4096 - OpenFileBudget.Reserve - udp) / 2, connections);
        Assert.Null(warning); // both defaults, fitted quietly
    }

    [Fact]
    public void AGivenUdpShare_IsKept_AndTheDefaultFittedDownToTheMinimum_IsSaid_NamingIt()
    {
        var (fitted, udp, warning) = OpenFileBudget.Fit(10_000, 4096, 4096, explicitlySet: false, udpExplicitlySet: true);
        Assert.Equal(4096, udp);
        Assert.Equal(OpenFileBudget.Minimum, fitted);
        Assert.NotNull(warning);
        Assert.Contains("max_connections 10000 (the default) needs about 24352 open files but the limit is 4096", warning);
        Assert.Contains("udp_max_associations 4096", warning);
        Assert.Contains($"at most {OpenFileBudget.Minimum} connections at once", warning);
        Assert.Contains("-n / \"nofile\"", warning);
    }

    [Fact]
    public void HoweverLowTheLimit_SomeConnectionsAndAssociationsRemain()
    {
        var (connections, udp, _) = OpenFileBudget.Fit(10_000, 256, 4096, explicitlySet: false);
        Assert.Equal(OpenFileBudget.Minimum, connections);
        Assert.Equal(OpenFileBudget.Minimum, udp);
    }

    [Fact]
    public void WithoutTcp_UdpsDefault_IsNotCutForConnectionsThatNeverOpen()
    {
        // A server or tunnel with -U runs no TCP relay: under LimitNOFILE=4096 its UDP was cut to a quarter (960
        // associations) to spare descriptors for TCP connections it does not serve, and a max_connections given was
        // "fitted" with a line about connections at once.
        var (_, udp, warning) = OpenFileBudget.Fit(10_000, 4096, 4096, explicitlySet: true, tcp: false);
        Assert.Equal(4096 - OpenFileBudget.Reserve, udp); // what the limit allows, not a quarter of it
        Assert.Null(warning);
        Assert.Equal(4096, OpenFileBudget.Fit(10_000, 1_048_576, 4096, explicitlySet: false, tcp: false).UdpAssociations);
    }

    [Fact]
    public void AServerOnSeveralAddresses_SharesTheLimitAmongThem()
    {
        // Each address has its own accept loop (max_connections slots) and its own UDP relay (udp_max_associations
        // NAT entries): a server on "::" and "0.0.0.0" under LimitNOFILE=4096 was fitted as if it had one, and could
        // hold twice what the limit allows, running out of descriptors the budget is there to keep.
        var (connections, udp, _) = OpenFileBudget.Fit(10_000, 4096, 4096, explicitlySet: false, addresses: 2);
        Assert.InRange((2 * ((2L * connections) + udp)) + OpenFileBudget.Reserve, 0, 4096);
        Assert.True(connections > OpenFileBudget.Minimum && udp > OpenFileBudget.Minimum);
    }
}
