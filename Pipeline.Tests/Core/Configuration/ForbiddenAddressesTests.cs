using System.Net;
using Shadowsocks.Pipeline.Core.Configuration;

namespace Shadowsocks.Pipeline.Tests.Core.Configuration;

/// <summary><c>--forbidden-ip</c>: the destinations a server refuses.</summary>
public sealed class ForbiddenAddressesTests
{
    [Fact]
    public void EntriesWrittenIPv4Mapped_ForbidTheIPv4Addresses()
    {
        // Destinations are looked up unmapped, so an entry kept in its mapped IPv6 form matched nothing: the server
        // reached a destination its operator forbade (the ACL had the same flaw, mended in a5fcf23).
        Assert.True(ForbiddenAddresses.TryParse("::ffff:10.0.0.0/104,::ffff:192.0.2.7", out var forbidden, out var error), error);

        Assert.True(forbidden.Contains(IPAddress.Parse("10.1.2.3")));
        Assert.True(forbidden.Contains(IPAddress.Parse("::ffff:10.1.2.3")));
        Assert.True(forbidden.Contains(IPAddress.Parse("192.0.2.7")));
        Assert.False(forbidden.Contains(IPAddress.Parse("192.0.2.8")));
        Assert.False(forbidden.Contains(IPAddress.Parse("11.0.0.1")));
    }
}
