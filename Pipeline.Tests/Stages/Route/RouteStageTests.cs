using System.Net;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Route;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Stages.Resolve;

namespace Shadowsocks.Pipeline.Tests.Stages.Route;

/// <summary>
/// The local's route stage (<c>--acl</c>): its parallelism (<c>pipeline.resolve.max_parallelism</c>) bounds the lookups
/// in flight, not the connections in the block. A lookup that hangs holds only its own connection: a connection to an
/// address, to a name a rule decides, or to a name the resolver knows at once needs no lookup and goes on at once.
/// </summary>
public sealed class RouteStageTests
{
    [Theory]
    [InlineData("address")]
    [InlineData("proxied.test")] // a proxy-list rule decides: no lookup
    [InlineData("cached.test")] // the resolver knows it at once (the cache, the hosts file)
    public async Task LookupsThatHang_DoNotHoldBackAConnectionThatNeedsNone_AndStayWithinTheStagesParallelism(string destination)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.True(AccessControlList.TryParse("[proxy_all]\n[proxy_list]\n^proxied\\.test$\n[bypass_list]\n127.0.0.0/8\n", out var acl, out var error), error);
        var resolver = new GatedResolver { Known = "cached.test" };
        var block = RouteStage.Create(new StageOptions(2, 64), acl, resolver);
        var (quick, first, maxInFlightWhileHeld, others) = await HeldLookups.RunAsync(
            block, resolver, destination == "address" ? ShadowsocksAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 80)) : ShadowsocksAddress.FromHost(destination, 80), cancel.Token);

        Assert.True(ReferenceEquals(quick, first), "a connection that needs no lookup waited behind other connections' lookups");
        Assert.Equal(destination != "proxied.test", quick.Direct); // loopback is on the bypass list
        Assert.Equal(2, maxInFlightWhileHeld);
        Assert.Equal(2, resolver.MaxInFlight);
        Assert.Equal(HeldLookups.SlowNames, resolver.Calls);
        Assert.All(others, s => Assert.True(s.Direct));
    }
}
