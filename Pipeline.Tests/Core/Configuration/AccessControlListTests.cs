using System.Net;
using Shadowsocks.Pipeline.Core.Configuration;

namespace Shadowsocks.Pipeline.Tests.Core.Configuration;

/// <summary>ACL files in shadowsocks-libev's format: sections and their aliases, addresses, networks and host-name rules.</summary>
public sealed class AccessControlListTests
{
    private static AccessControlList Parse(string text)
    {
        Assert.True(AccessControlList.TryParse(text, out var acl, out var error), error);
        return acl;
    }

    [Fact]
    public void AcceptAll_RefusesOnlyTheBlackList_WhereLinesBeforeAnyHeaderGo()
    {
        var acl = Parse("""
            # blocked clients
            192.0.2.7
            198.51.100.0/24
            [white_list]
            192.0.2.8
            """);
        Assert.False(acl.RejectAll);
        Assert.False(acl.Admits(IPAddress.Parse("192.0.2.7")));
        Assert.False(acl.Admits(IPAddress.Parse("198.51.100.200")));
        Assert.False(acl.Admits(IPAddress.Parse("::ffff:198.51.100.1"))); // IPv4-mapped: checked as IPv4
        Assert.True(acl.Admits(IPAddress.Parse("192.0.2.8")));
        Assert.True(acl.Admits(IPAddress.Parse("203.0.113.1")));
    }

    [Theory]
    [InlineData("[reject_all]", "[white_list]", "[black_list]")]
    [InlineData("[bypass_all]", "[proxy_list]", "[bypass_list]")] // the local's names for the same lists
    public void RejectAll_AdmitsOnlyTheWhiteList_AndTheBlackListWins(string rejectAll, string white, string black)
    {
        var acl = Parse($"""
            {rejectAll}
            {white}
            10.0.0.0/8
            2001:db8::/32
            {black}
            10.9.9.9
            """);
        Assert.True(acl.RejectAll);
        Assert.True(acl.Admits(IPAddress.Parse("10.1.2.3")));
        Assert.True(acl.Admits(IPAddress.Parse("2001:db8::1")));
        Assert.False(acl.Admits(IPAddress.Parse("10.9.9.9")));
        Assert.False(acl.Admits(IPAddress.Parse("192.0.2.1")));
    }

    [Fact]
    public void OutboundBlockList_AddressesNetworksAndHostNameRules()
    {
        var acl = Parse("""
            [outbound_block_list]
            127.0.0.0/8
            ::1
            (^|\.)tracker\.example$
            ^ads\.
            """);
        Assert.True(acl.BlocksAnyOutbound);
        Assert.True(acl.BlocksOutbound(IPAddress.Parse("127.1.2.3")));
        Assert.True(acl.BlocksOutbound(IPAddress.IPv6Loopback));
        Assert.False(acl.BlocksOutbound(IPAddress.Parse("192.0.2.1")));
        Assert.True(acl.BlocksOutbound("tracker.example"));
        Assert.True(acl.BlocksOutbound("open.TRACKER.example")); // host names compare without case
        Assert.True(acl.BlocksOutbound("ads.example.org"));      // searched, not anchored unless the rule is
        Assert.False(acl.BlocksOutbound("nottracker.example"));
        Assert.False(acl.BlocksOutbound("example.org"));
        Assert.True(acl.Admits(IPAddress.Loopback)); // the block list says nothing about clients
    }

    [Fact]
    public void ABadRule_NamesItsLine()
    {
        Assert.False(AccessControlList.TryParse("[outbound_block_list]\n\n(unclosed\n", out _, out var error));
        Assert.StartsWith("line 3: '(unclosed' is neither an address, a network nor a valid regular expression", error);
    }

    [Fact]
    public void AnEmptyFile_AdmitsAllAndBlocksNothing()
    {
        var acl = Parse("# nothing\n\n");
        Assert.True(acl.Admits(IPAddress.Parse("192.0.2.1")));
        Assert.False(acl.BlocksAnyOutbound);
        Assert.False(acl.BlocksOutbound("example.org"));
    }

    [Fact]
    public void Local_ANameRuleDecidesFirst_ElseTheAddressUnderTheDefault()
    {
        var proxyAll = Parse("[proxy_all]\n[bypass_list]\n(^|\\.)cn$\n192.168.0.0/16\n[proxy_list]\n^www\\.example\\.cn$\n");
        Assert.True(proxyAll.BypassesName("baidu.cn"));
        Assert.True(proxyAll.BypassesName("www.example.cn")); // the bypass list is asked first, as ss-local does
        Assert.Null(proxyAll.BypassesName("example.org"));
        Assert.True(proxyAll.Bypasses(IPAddress.Parse("192.168.1.1")));
        Assert.False(proxyAll.Bypasses(IPAddress.Parse("8.8.8.8")));

        var bypassAll = Parse("[bypass_all]\n[proxy_list]\n^blocked\\.example$\n8.8.8.0/24\n");
        Assert.False(bypassAll.BypassesName("blocked.example"));
        Assert.Null(bypassAll.BypassesName("example.org"));
        Assert.False(bypassAll.Bypasses(IPAddress.Parse("8.8.8.8")));
        Assert.True(bypassAll.Bypasses(IPAddress.Parse("192.0.2.1")));
    }
}
