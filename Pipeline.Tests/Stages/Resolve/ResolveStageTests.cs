using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Resolve;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Resolve;

/// <summary>
/// The server's TCP resolve stage: <c>pipeline.resolve.max_parallelism</c> bounds the lookups in flight, and a lookup
/// that takes long (a name whose servers do not answer: up to the resolver's total timeout) holds only its own
/// connection. A connection to an address, or to a name the resolver knows at once (the cache, the hosts file), needs no
/// lookup and goes on at once.
/// </summary>
public sealed class ResolveStageTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)] // a name the resolver knows at once (the cache, the hosts file)
    public async Task LookupsThatHang_DoNotHoldBackAConnectionToAnAddress_AndStayWithinTheStagesParallelism(bool toAKnownName)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var resolver = new GatedResolver { Known = "cached.test" };
        var block = ResolveStage.Create(new StageOptions(2, 64), resolver);
        var (direct, first, maxInFlightWhileHeld, others) = await HeldLookups.RunAsync(
            block, resolver, toAKnownName ? ShadowsocksAddress.FromHost("cached.test", 80) : ShadowsocksAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 80)), cancel.Token);

        Assert.True(ReferenceEquals(direct, first), "a connection to an address or a known name waited behind other connections' lookups");
        Assert.Equal([IPAddress.Loopback], direct.ResolvedAddresses);
        Assert.Equal(2, maxInFlightWhileHeld);
        Assert.Equal(2, resolver.MaxInFlight);
        Assert.Equal(HeldLookups.SlowNames, resolver.Calls);
        Assert.All(others, s => Assert.Equal([IPAddress.Loopback], s.ResolvedAddresses));
    }

    [Fact]
    public async Task OnlyAConnectionThatWaitsForALookup_HasItsClientWatched_AndOnlyWhileItWaits()
    {
        // The watch (a client's reset during the lookup) costs a dictionary entry and a timer: an address, or a name the
        // resolver knows at once, waits for nothing and takes none.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var resolver = new GatedResolver { Known = "cached.test" };
        var watch = new HalfOpenWatch(TimeProvider.System);
        var block = ResolveStage.Create(new StageOptions(2, 64), resolver, clientWatch: watch);
        TcpSession Session(ShadowsocksAddress destination) =>
            new(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), span: null) { Destination = destination };

        foreach (var destination in (ShadowsocksAddress[])[ShadowsocksAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 80)), ShadowsocksAddress.FromHost("cached.test", 80)])
        {
            using var atOnce = Session(destination);
            Assert.True(block.Post(atOnce));
            Assert.Same(atOnce, await block.ReceiveAsync(cancel.Token));
            Assert.Equal(0, watch.Count);
        }

        using var waiting = Session(ShadowsocksAddress.FromHost("slow.test", 80));
        Assert.True(block.Post(waiting));
        while (resolver.InFlight == 0)
        {
            await Task.Delay(10, cancel.Token);
        }

        Assert.Equal(1, watch.Count); // watched while its lookup is under way
        resolver.Open();
        Assert.Same(waiting, await block.ReceiveAsync(cancel.Token));
        Assert.Equal([IPAddress.Loopback], waiting.ResolvedAddresses);
        Assert.Equal(0, watch.Count); // and forgotten after it
    }

    [Fact]
    public async Task ANameThatDoesNotResolve_FailsTheConnection_SayingWhichNameAndWhy()
    {
        // The -v line said "cannot resolve missing.test" and no more: a typo, a dead name server and a refusal read alike.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var dnsmasq = new DnsmasqFixture();
        using var resolver = new DnsResolver(
            new DnsResolverOptions { Servers = [dnsmasq.EndPoint], HostsPath = "/nonexistent/hosts" }, ProgramScheduler.Instance, TimeProvider.System);
        var block = ResolveStage.Create(new StageOptions(2, 64), resolver);
        using var session = new TcpSession(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), span: null)
        {
            Destination = ShadowsocksAddress.FromHost("missing.test", 80),
        };
        Assert.True(block.Post(session));
        var failed = await block.ReceiveAsync(cancel.Token);
        Assert.Same(session, failed);
        Assert.Empty(failed.ResolvedAddresses);
        Assert.Equal($"cannot resolve missing.test: no such name (NXDOMAIN from {dnsmasq.EndPoint})", failed.FailureReason);
    }

    [Fact]
    public async Task ABurstOfConnectionsToOneSlowName_TakesOneLookupSlot_AndAnotherNameIsLookedUpMeanwhile()
    {
        // Each connection took a slot of its own, though the resolver shares one lookup among them: a web page's burst
        // to one name whose servers were slow took every slot, and connections to other names waited behind it.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var dns = new FakeDnsServer(async query =>
        {
            if (query.AsSpan().IndexOf("\u0004slow"u8) >= 0)
            {
                await open.Task; // held until the test lets it go
            }

            return [(FakeDnsServer.Answer(query, [IPAddress.Loopback]), false)];
        });
        using var resolver = new DnsResolver(
            new DnsResolverOptions { Servers = [dns.EndPoint], HostsPath = "/nonexistent/hosts", Attempts = 1, AttemptTimeout = TimeSpan.FromSeconds(60), TotalTimeout = TimeSpan.FromSeconds(60) },
            ProgramScheduler.Instance,
            TimeProvider.System);
        var block = ResolveStage.Create(new StageOptions(2, 64), resolver);
        var sessions = new List<TcpSession>();
        try
        {
            for (var i = 0; i < HeldLookups.SlowNames; i++)
            {
                sessions.Add(Session(ShadowsocksAddress.FromHost("slow.test", 80)));
                Assert.True(block.Post(sessions[^1]));
            }

            while (dns.Queries < 2) // slow.test's A and AAAA
            {
                await Task.Delay(10, cancel.Token);
            }

            var other = Session(ShadowsocksAddress.FromHost("other.test", 80));
            sessions.Add(other);
            Assert.True(block.Post(other));
            TcpSession? first = null;
            try
            {
                first = await block.ReceiveAsync(TimeSpan.FromSeconds(10), cancel.Token); // generous: slow.test never answers meanwhile
            }
            catch (TimeoutException)
            {
                // Asserted below, once slow.test is let go.
            }

            open.SetResult();
            for (var left = first is null ? sessions.Count : sessions.Count - 1; left > 0; left--)
            {
                Assert.Equal([IPAddress.Loopback], (await block.ReceiveAsync(cancel.Token)).ResolvedAddresses);
            }

            Assert.True(ReferenceEquals(other, first), "a connection to another name waited behind a burst of connections to one slow name");
            Assert.Equal(4, resolver.QueriesSent); // one lookup each name
        }
        finally
        {
            open.TrySetResult();
            sessions.ForEach(static s => s.Dispose());
        }

        static TcpSession Session(ShadowsocksAddress destination) =>
            new(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), span: null) { Destination = destination };
    }
}
