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
    public void RulesWrittenAsIPv4MappedAddresses_MatchTheIPv4Addresses()
    {
        var acl = Parse("""
            ::ffff:10.0.0.0/104
            ::ffff:192.0.2.7
            """);
        Assert.False(acl.Admits(IPAddress.Parse("10.1.2.3")));
        Assert.False(acl.Admits(IPAddress.Parse("::ffff:10.1.2.3")));
        Assert.False(acl.Admits(IPAddress.Parse("192.0.2.7")));
        Assert.True(acl.Admits(IPAddress.Parse("192.0.2.8")));
        Assert.True(acl.Admits(IPAddress.Parse("11.0.0.1")));
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
    public void ACommentAfterARule_IsCutOff_AsSsLibevCutsIt()
    {
        // ss-libev cuts a line at its first '#': with the comment kept, these were regular expressions that match no
        // host name, and the addresses they name went unblocked.
        var acl = Parse("""
            [outbound_block_list]
            192.0.2.7 # the printer
            198.51.100.0/24	# lab
            (^|\.)example\.com$  # and its subdomains
            [reject_all] # clients
            [white_list]
            203.0.113.5#no space
            """);
        Assert.True(acl.BlocksOutbound(IPAddress.Parse("192.0.2.7")));
        Assert.True(acl.BlocksOutbound(IPAddress.Parse("198.51.100.9")));
        Assert.True(acl.BlocksOutbound("www.example.com"));
        Assert.True(acl.RejectAll);
        Assert.True(acl.Admits(IPAddress.Parse("203.0.113.5")));
        Assert.False(acl.Admits(IPAddress.Parse("203.0.113.6")));
    }

    [Theory]
    [InlineData("[BYPASS_ALL]", "; did you mean [bypass_all]?")]
    [InlineData("[Outbound_Block_List]", "; did you mean [outbound_block_list]?")]
    [InlineData("[bypass_lists]", ")")]
    [InlineData("[blacklist]", ")")]
    public void AHeaderThatIsNoSection_IsRefusedWithItsLine_NeverTakenForACharacterClass(string header, string ending)
    {
        // As a regular expression it is a character class: under the black list, '[BYPASS_ALL]' matched any name with
        // an a, b, l, p, s or y in it (example.com) and refused it.
        Assert.False(AccessControlList.TryParse($"[proxy_all]\n\n{header}\n192.0.2.1\n", out _, out var error));
        Assert.StartsWith($"line 3: '{header}' is not a section (sections are [proxy_all], ", error, StringComparison.Ordinal);
        Assert.EndsWith(ending, error, StringComparison.Ordinal);
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

    [Fact]
    public void Local_AnAddressSpeltAsAName_IsLeftToTheAddressLists()
    {
        var acl = Parse("[proxy_all]\n[bypass_list]\n^10\\.\n[proxy_list]\n:1$\n");
        Assert.Null(acl.BypassesName("10.1.2.3"));
        Assert.Null(acl.BypassesName("2001:db8::1"));
        Assert.True(acl.BypassesName("10.example")); // a name still meets the rules
    }

    [Theory]
    [InlineData(@"(^|\.)example\.com$")]
    [InlineData(@"^exact\.org$")]
    [InlineData(@"(^|\.)co-op_1\.net$")]
    [InlineData(@"(^|\.)exam.le\.com$")] // an unescaped dot: a regular expression, run as one
    public void IndexedRules_MatchExactlyWhatTheRegularExpressionMatches(string rule)
    {
        var acl = Parse($"[outbound_block_list]\n{rule}\n");
        var regex = new System.Text.RegularExpressions.Regex(rule, System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        string[] hosts =
        [
            "example.com", "a.example.com", "a.b.EXAMPLE.com", "aexample.com", "example.com.evil", "example.co", "com",
            "exact.org", "EXACT.ORG", "x.exact.org", "exact.org.x", "co-op_1.net", "www.co-op_1.net", "examXle.com", "",
        ];
        foreach (var host in hosts)
        {
            Assert.True(regex.IsMatch(host) == acl.BlocksOutbound(host), $"{rule} on '{host}': the regular expression says {regex.IsMatch(host)}");
        }
    }

    [Fact]
    public void Networks_OverlappingAndAdjacent_AreMergedWithoutLosingAny_HostBitsCleared()
    {
        var acl = Parse("[outbound_block_list]\n10.0.0.0/16\n10.0.128.0/17\n10.1.2.3/16\n192.0.2.255\n0.0.0.0/8\n2001:db8::1/48\n");
        foreach (var inside in new[] { "10.0.0.0", "10.0.255.255", "10.1.200.1", "192.0.2.255", "0.1.2.3", "2001:db8::5" })
        {
            Assert.True(acl.BlocksOutbound(IPAddress.Parse(inside)), inside);
        }

        foreach (var outside in new[] { "10.2.0.0", "9.255.255.255", "192.0.2.254", "193.0.0.0", "1.0.0.0", "2001:db9::1", "255.255.255.255" })
        {
            Assert.False(acl.BlocksOutbound(IPAddress.Parse(outside)), outside);
        }
    }

    [Theory]
    [InlineData("10.0.0.0/33", "0 to 32")]
    [InlineData("1.2.3.4/-1", "0 to 32")]
    [InlineData("2001:db8::/129", "0 to 128")]
    [InlineData("10.0.0.0/x", "0 to 32")]
    public void ANetworkWithAPrefixOutOfRange_IsRefusedWithItsLine_NeverTakenForAHostNameRule(string network, string valid)
    {
        Assert.False(AccessControlList.TryParse($"[reject_all]\n[white_list]\n{network}\n", out _, out var error));
        Assert.Contains("line 3", error, StringComparison.Ordinal);
        Assert.Contains(network, error, StringComparison.Ordinal);
        Assert.Contains(valid, error, StringComparison.Ordinal);
    }
}
