using System.Net;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Core.Dns;

/// <summary>A name only dnsmasq knows, resolved by our server's own resolver, fetched with curl through our local.</summary>
public sealed class DnsThroughTheChainTests
{
    [Fact]
    public async Task CurlFetchesByANameOnlyDnsmasqKnows()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var dnsmasq = new DnsmasqFixture();
        await using var web = new TinyHttpServer("resolved by our own resolver");
        using var resolver = new DnsResolver(new DnsResolverOptions { Servers = [dnsmasq.EndPoint] }, ProgramScheduler.Instance, TimeProvider.System);
        var loopback = new IPEndPoint(IPAddress.Loopback, 0);
        await using var server = new ServerTcpRelay(RelayChain.Options("aes-256-gcm", "dns", loopback), resolver, ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        await using var local = new LocalTcpRelay(RelayChain.Options("aes-256-gcm", "dns", loopback, server.LocalEndPoint), ProgramScheduler.Instance, TimeProvider.System);
        local.Start();

        var output = await Curl.RunAsync(
            ["-sS", "--max-time", "20", "--socks5-hostname", $"127.0.0.1:{local.LocalEndPoint.Port}", $"http://{DnsmasqFixture.Web}:{web.EndPoint.Port}/"],
            cancel.Token);
        Assert.Equal("resolved by our own resolver", output);
        Assert.True(resolver.QueriesSent >= 1);
    }
}
