using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using Microsoft.Reactive.Testing;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Core.Dns;

/// <summary>The resolver against a real dnsmasq on loopback, and against scripted servers for what dnsmasq will not do.</summary>
public sealed class DnsResolverTests : IDisposable
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(20);
    private readonly DnsmasqFixture _dnsmasq = new();
    private readonly string _emptyHosts = Path.GetTempFileName();

    public void Dispose()
    {
        _dnsmasq.Dispose();
        File.Delete(_emptyHosts);
    }

    [Theory]
    [InlineData("a.test", "10.1.2.3")]
    [InlineData("v6.test", "fd00::1")]
    [InlineData("alias.test", "10.1.2.3")] // alias.test -> chain.test -> a.test
    [InlineData("A.TEST.", "10.1.2.3")]
    public async Task ResolvesRecordsOfARealServer(string name, string expected)
    {
        using var resolver = Resolver([_dnsmasq.EndPoint]);
        using var cancel = new CancellationTokenSource(s_timeout);
        Assert.Equal([IPAddress.Parse(expected)], await resolver.ResolveAsync(name, cancel.Token));
    }

    [Theory]
    [InlineData(DnsmasqFixture.Web + "..")]
    [InlineData("from-hosts.test..")]
    public async Task ANameEndingInTwoDots_IsNotAValidName(string name)
    {
        // Every trailing dot was trimmed, so "web.test.." resolved as web.test; only the root's one dot may end a name.
        using var cancel = new CancellationTokenSource(s_timeout);
        File.WriteAllLines(_emptyHosts, ["10.3.3.3 from-hosts.test"]);
        using var resolver = Resolver([_dnsmasq.EndPoint]);
        Assert.Empty(await resolver.ResolveAsync(name, cancel.Token));
        Assert.StartsWith("not a valid DNS name", resolver.FailureReason(name));
        Assert.Equal(0, resolver.QueriesSent);
        Assert.NotEmpty(await resolver.ResolveAsync(name[..^1], cancel.Token)); // with one dot: the fully qualified name
    }

    [Fact]
    public async Task AServerGivenAsAnIPv4MappedAddress_IsAskedAtItsIpv4Address()
    {
        // -d '[::ffff:127.0.0.1]:53' was taken at start, and every lookup then failed (ss-server refuses it at start).
        using var resolver = Resolver([new IPEndPoint(_dnsmasq.EndPoint.Address.MapToIPv6(), _dnsmasq.Port)]);
        using var cancel = new CancellationTokenSource(s_timeout);
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await resolver.ResolveAsync("a.test", cancel.Token));
    }

    [Fact]
    public async Task ManyRecords_AndIpv4First_OrIpv6FirstWhenAsked()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var resolver = Resolver([_dnsmasq.EndPoint]);
        var many = await resolver.ResolveAsync("many.test", cancel.Token);
        Assert.Equal(Enumerable.Range(1, 12).Select(i => $"10.20.0.{i}").Order(), many.Select(a => a.ToString()).Order());

        Assert.Equal([IPAddress.Parse("10.1.2.4"), IPAddress.Parse("fd00::4")], await resolver.ResolveAsync("dual.test", cancel.Token));
        using var v6First = Resolver([_dnsmasq.EndPoint], ipv6First: true);
        Assert.Equal([IPAddress.Parse("fd00::4"), IPAddress.Parse("10.1.2.4")], await v6First.ResolveAsync("dual.test", cancel.Token));
    }

    [Fact]
    public async Task NxDomain_IsEmpty_AndCachedBriefly()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var scheduler = new TestScheduler();
        using var resolver = Resolver([_dnsmasq.EndPoint], scheduler: scheduler);
        Assert.Empty(await resolver.ResolveAsync("missing.test", cancel.Token));
        var sent = resolver.QueriesSent;
        Assert.Empty(await resolver.ResolveAsync("missing.test", cancel.Token));
        Assert.Equal(sent, resolver.QueriesSent);

        scheduler.AdvanceBy(TimeSpan.FromSeconds(10).Ticks);
        Assert.Empty(await resolver.ResolveAsync("missing.test", cancel.Token));
        Assert.Equal(sent + 2, resolver.QueriesSent);
    }

    [Theory]
    [InlineData(30, 30)]
    [InlineData(3600, 300)] // at most 5 min, whatever the zone says
    [InlineData(0, 1)] // at least 1 s, as answers with addresses
    public async Task NegativeAnswers_AreCachedForTheZonesNegativeTtl(int soaTtl, int cachedSeconds)
    {
        // RFC 2308 § 5: a negative answer is cached for the smaller of its SOA's TTL and MINIMUM. It was 10 s whatever
        // the zone said: a zone saying 30 s had its missing names asked again three times as often.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var authoritative = new DnsmasqFixture(authTtl: soaTtl);
        var scheduler = new TestScheduler();
        using var resolver = Resolver([authoritative.EndPoint], scheduler: scheduler);
        foreach (var name in new[] { "missing.test", "text-only.test" }) // NXDOMAIN; NOERROR with no address (NODATA)
        {
            var sent = resolver.QueriesSent;
            Assert.Empty(await resolver.ResolveAsync(name, cancel.Token));
            Assert.Equal(sent + 2, resolver.QueriesSent);
            scheduler.AdvanceBy(TimeSpan.FromSeconds(cachedSeconds).Ticks - 1);
            Assert.Empty(await resolver.ResolveAsync(name, cancel.Token));
            Assert.Equal(sent + 2, resolver.QueriesSent);
            scheduler.AdvanceBy(1);
            Assert.Empty(await resolver.ResolveAsync(name, cancel.Token));
            Assert.Equal(sent + 4, resolver.QueriesSent);
        }

        Assert.Equal([IPAddress.Parse("10.1.2.3")], await resolver.ResolveAsync("a.test", cancel.Token)); // its AAAA: NODATA with an SOA
    }

    [Fact]
    public async Task Ttl_ExpiresInVirtualTime()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var scheduler = new TestScheduler();
        using var resolver = Resolver([_dnsmasq.EndPoint], scheduler: scheduler);
        Assert.Equal([IPAddress.Parse("10.9.9.9")], await resolver.ResolveAsync("short.test", cancel.Token)); // TTL 1 s
        Assert.Equal(2, resolver.QueriesSent); // A and AAAA
        scheduler.AdvanceBy(TimeSpan.FromMilliseconds(999).Ticks);
        await resolver.ResolveAsync("short.test", cancel.Token);
        Assert.Equal(2, resolver.QueriesSent);
        scheduler.AdvanceBy(TimeSpan.FromMilliseconds(1).Ticks);
        Assert.Equal([IPAddress.Parse("10.9.9.9")], await resolver.ResolveAsync("short.test", cancel.Token));
        Assert.Equal(4, resolver.QueriesSent);
    }

    [Fact]
    public async Task SilentServerFirst_RetryMovesToTheNextServer()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        // 1 s per attempt: with 300 ms, a loaded machine once let dnsmasq's answer miss its attempt too, and the
        // resolver went round to the silent server again (4 queries there, not 2).
        using var resolver = Resolver([silent.EndPoint, _dnsmasq.EndPoint], attemptTimeout: TimeSpan.FromSeconds(1));
        var clock = Stopwatch.StartNew();
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(2, silent.Queries);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task ASilentFirstServer_IsAskedOnce_ThenTheServerThatAnsweredComesFirst()
    {
        // -d DEAD,GOOD: every uncached lookup waited out an attempt on DEAD (2 s by default) before asking GOOD.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([silent.EndPoint, _dnsmasq.EndPoint], attemptTimeout: TimeSpan.FromSeconds(1));
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(2, silent.Queries);
        Assert.Equal([IPAddress.Parse("fd00::1")], await resolver.ResolveAsync("v6.test", cancel.Token));
        Assert.Empty(await resolver.ResolveAsync("missing.test", cancel.Token));
        Assert.Equal(2, silent.Queries);
    }

    [Fact]
    public async Task AServerThatFailsOneFamily_AndHasNothingForTheOther_IsNotTheAnswer_TheNextServerIs()
    {
        // SERVFAIL for A, an empty answer for AAAA: that says nothing about A. It was taken (and cached) as "no such name".
        using var cancel = new CancellationTokenSource(s_timeout);
        using var failing = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>(
            [(IsAQuery(query) ? FakeDnsServer.Answer(query, [], rcode: 2) : FakeDnsServer.Answer(query, []), false)]));
        // 2 s per attempt (the default): with 500 ms, a loaded machine could let dnsmasq's answer miss its attempt, and
        // the resolver went round to the failing server again (4 queries there, not 2), as SilentServerFirst once did.
        using var resolver = Resolver([failing.EndPoint, _dnsmasq.EndPoint], attemptTimeout: TimeSpan.FromSeconds(2));
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(2, failing.Queries);
    }

    [Fact]
    public async Task AServerThatNeverAnswersAaaa_StillGivesTheIpv4Addresses()
    {
        // Some servers and middleboxes drop AAAA queries (glibc's "single-request" exists for them). The A answer came
        // at once, but the AAAA one never did, every attempt timed out as a whole, and the name did not resolve at all.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var dropsAaaa = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>(
            IsAQuery(query) ? [(FakeDnsServer.Answer(query, [IPAddress.Parse("10.5.5.5")]), false)] : []));
        // The A answer must come within an attempt: 1 s, not 300 ms, so that a loaded machine does not miss it on
        // every attempt within the total.
        using var resolver = Resolver([dropsAaaa.EndPoint], attemptTimeout: TimeSpan.FromSeconds(1), total: TimeSpan.FromSeconds(5));
        Assert.Equal([IPAddress.Parse("10.5.5.5")], await resolver.ResolveAsync("no-aaaa.test", cancel.Token));
    }

    [Fact]
    public async Task EachQuery_LeavesFromAPortOfItsOwn()
    {
        // RFC 5452 § 9.2: the source port is half of what a forger must guess. One socket for the resolver's life left
        // only the 16-bit ID to guess once its port was known (a UDP port scan of the host finds it).
        using var cancel = new CancellationTokenSource(s_timeout);
        using var server = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>(
            [(FakeDnsServer.Answer(query, [IPAddress.Parse("10.6.6.6")]), false)]));
        using var resolver = Resolver([server.EndPoint]);
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal([IPAddress.Parse("10.6.6.6")], await resolver.ResolveAsync($"name{i}.test", cancel.Token));
        }

        Assert.Equal(16, server.Peers.Count);
        Assert.True(server.Peers.Select(p => p.Port).Distinct().Count() >= 12, $"source ports: {string.Join(", ", server.Peers.Select(p => p.Port))}");
    }

    [Fact]
    public async Task AClosedServerPortFirst_TheNextServerIsAskedAtOnce()
    {
        // A name server that is not running (127.0.0.53 with systemd-resolved stopped) answers with ICMP port
        // unreachable, which an unconnected socket never hears: every uncached lookup waited out the first attempt.
        using var cancel = new CancellationTokenSource(s_timeout);
        IPEndPoint closed;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            closed = (IPEndPoint)probe.LocalEndPoint!;
        }

        // Waiting out the first attempt takes 4 s; asking the next at once, far less. The bound is half an attempt, so
        // that a loaded machine's slower lookup is not taken for a wait (1 s of 2 left little room).
        using var resolver = Resolver([closed, _dnsmasq.EndPoint], attemptTimeout: TimeSpan.FromSeconds(4));
        var clock = Stopwatch.StartNew();
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task AClosedServerPort_IsPassedOverForTheRestOfTheLookup()
    {
        // ICMP port unreachable moved the lookup to the next server, but the closed port was asked again each round
        // (a lone one: 4 attempts, 8 queries), where a server answering REFUSED or SERVFAIL is passed over. On a real
        // network the kernel rate-limits its ICMP, and the later attempts waited out their timeouts.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var closed = ClosedUdpPort();
        using var alone = Resolver([closed], total: TimeSpan.FromSeconds(8));
        var clock = Stopwatch.StartNew();
        Assert.Empty(await alone.ResolveAsync("a.test", cancel.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}"); // an attempt is 2 s, the lookup 8 s
        Assert.Equal(2, alone.QueriesSent); // A and AAAA, once
        Assert.Equal($"port unreachable at {closed} (1 attempt)", alone.FailureReason("a.test"));

        using var both = Resolver([closed, _dnsmasq.EndPoint], total: TimeSpan.FromSeconds(8));
        clock.Restart();
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await both.ResolveAsync("a.test", cancel.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
        Assert.Equal(4, both.QueriesSent); // the closed port 2, dnsmasq 2

        // dnsmasq (asked first now: it answered last) refuses a name outside its zone; the closed port is then asked
        // once, not on each round left. Not cached: a closed port says nothing about the name.
        Assert.Empty(await both.ResolveAsync("outside.example", cancel.Token));
        Assert.Equal(8, both.QueriesSent);
        Assert.Equal($"REFUSED from {_dnsmasq.EndPoint}; port unreachable at {closed} (2 attempts)", both.FailureReason("outside.example"));
        Assert.False(both.TryResolveAtOnce("outside.example", out _));
    }

    [Fact]
    public async Task TheWaitPerAttempt_DoublesEachTimeAServerIsAskedAgain_AServerPassedOverNotCounting()
    {
        // The wait doubled with the attempts counted over every server, one passed over (here a closed port) included:
        // a lone server left after it waited 1 s, 2 s, 2 s, 4 s where each round (that server alone) doubles it.
        // Pinned on a manual clock: each attempt's timer is looked at, then the clock moved on to it.
        using var cancel = new CancellationTokenSource(s_timeout);
        var time = new ManualTimeProvider();
        using var silent = new FakeDnsServer(static _ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([ClosedUdpPort(), silent.EndPoint], attemptTimeout: TimeSpan.FromSeconds(1), total: TimeSpan.FromHours(1), attempts: 5, time: time);
        var lookup = resolver.ResolveAsync("a.test", cancel.Token).AsTask();
        var waits = new List<TimeSpan>();
        for (var sent = 1; sent <= 4; sent++)
        {
            while (silent.Queries < 2 * sent) // this attempt's A and AAAA; its timer was set before they were sent
            {
                await Task.Delay(10, cancel.Token);
            }

            var now = time.GetUtcNow();
            var hourFromStart = time.DueTimes.Max(); // the lookup's total deadline, set first
            var wait = time.DueTimes.Where(due => due != hourFromStart).Min() - now;
            waits.Add(wait);
            time.Advance(wait);
        }

        Assert.Equal([TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8)], waits);
        Assert.Empty(await lookup.WaitAsync(cancel.Token)); // 5 attempts: the closed port's, then 4 to the silent server
        Assert.Equal(8, silent.Queries);
    }

    [Fact]
    public async Task AServerWithNoRouteToIt_IsPassedOverForTheRestOfTheLookup()
    {
        // Network (or host) unreachable was retried each round, as a silent server is: a lone such server, 4 attempts at
        // once (the send fails at once), and on a real network, an ICMP host unreachable or an ARP that goes unanswered
        // each time. fe80::1 on the loopback interface: a link-local address with no route on that link, so the send
        // fails with ENETUNREACH and nothing leaves the machine.
        using var cancel = new CancellationTokenSource(s_timeout);
        var unreachable = new IPEndPoint(new IPAddress(IPAddress.Parse("fe80::1").GetAddressBytes(), NetworkInterface.IPv6LoopbackInterfaceIndex), 53);
        using var alone = Resolver([unreachable]);
        Assert.Empty(await alone.ResolveAsync("a.test", cancel.Token));
        Assert.Equal($"network unreachable at {unreachable} (1 attempt)", alone.FailureReason("a.test"));
        Assert.False(alone.TryResolveAtOnce("a.test", out _)); // not cached: the route may be back at the next lookup

        // Beside dnsmasq: it answers; and for a name it refuses, the unreachable server is tried once, not each round.
        using var both = Resolver([unreachable, _dnsmasq.EndPoint]);
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await both.ResolveAsync("a.test", cancel.Token));
        Assert.Empty(await both.ResolveAsync("outside.example", cancel.Token));
        Assert.Equal($"REFUSED from {_dnsmasq.EndPoint}; network unreachable at {unreachable} (2 attempts)", both.FailureReason("outside.example"));
    }

    [Fact]
    public async Task Formerr_PassesTheServerOver_ButTheNameIsNotCachedAsFailed()
    {
        // FORMERR says the server could not parse the query, nothing about the name; it was cached as a server failure
        // (5 s). c-ares caches only NOERROR and NXDOMAIN answers.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var formerr = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], rcode: 1), false)]));
        using var alone = Resolver([formerr.EndPoint]);
        Assert.Empty(await alone.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(2, formerr.Queries); // passed over within the lookup, as SERVFAIL is
        Assert.Equal($"FORMERR from {formerr.EndPoint} (1 attempt)", alone.FailureReason("a.test"));
        Assert.False(alone.TryResolveAtOnce("a.test", out _));
        Assert.Empty(await alone.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(4, formerr.Queries);

        // A FORMERR for one family beside a SERVFAIL for the other: not cached either.
        using var mixed = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>(
            [(FakeDnsServer.Answer(query, [], rcode: IsAQuery(query) ? 1 : 2), false)]));
        using var toMixed = Resolver([mixed.EndPoint]);
        Assert.Empty(await toMixed.ResolveAsync("b.test", cancel.Token));
        Assert.False(toMixed.TryResolveAtOnce("b.test", out _));

        // The next server answers.
        using var then = Resolver([formerr.EndPoint, _dnsmasq.EndPoint]);
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await then.ResolveAsync("a.test", cancel.Token));
    }

    [Fact]
    public async Task Notimp_PassesTheServerOver_ButTheNameIsNotCachedAsFailed()
    {
        // NOTIMP says the server does not do such queries, nothing about the name: it was cached as a server failure (5 s).
        using var cancel = new CancellationTokenSource(s_timeout);
        using var notimp = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], rcode: 4), false)]));
        using var resolver = Resolver([notimp.EndPoint]);
        Assert.Empty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(2, notimp.Queries);
        Assert.Equal($"NOTIMP from {notimp.EndPoint} (1 attempt)", resolver.FailureReason("a.test"));
        Assert.False(resolver.TryResolveAtOnce("a.test", out _));
        Assert.Empty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(4, notimp.Queries);
    }

    [Fact]
    public async Task ABrokenAnswerOverTcp_PassesTheServerOver_ButTheNameIsNotCachedAsFailed()
    {
        // A truncated answer over UDP, then over TCP a message that is not the answer (another ID): the failure was cached
        // 5 s as if the server had said SERVFAIL, though it says nothing about the name.
        using var cancel = new CancellationTokenSource(s_timeout);
        var port = LoopbackPorts.Next();
        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.Bind(new IPEndPoint(IPAddress.Loopback, port));
        tcp.Listen();
        var connections = 0;
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    using var connection = await tcp.AcceptAsync();
                    Interlocked.Increment(ref connections);
                    var prefix = new byte[2];
                    await ReceiveExactly(connection, prefix);
                    var query = new byte[(prefix[0] << 8) | prefix[1]];
                    await ReceiveExactly(connection, query);
                    var answer = FakeDnsServer.Answer(query, [IPAddress.Parse("10.9.9.9")]);
                    answer[0] ^= 0xFF; // not the query's ID
                    await connection.SendAsync(new byte[] { 0, (byte)answer.Length }.Concat(answer).ToArray(), SocketFlags.None);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Disposed.
            }
        });
        using var truncating = new FakeDnsServer(
            query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], truncated: true), false)]),
            port);
        using var resolver = Resolver([truncating.EndPoint]);
        Assert.Empty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.True(Volatile.Read(ref connections) >= 1);
        Assert.StartsWith($"a bad answer over TCP from {truncating.EndPoint}", resolver.FailureReason("a.test"));
        Assert.DoesNotContain("cached", resolver.FailureReason("a.test"));
        Assert.False(resolver.TryResolveAtOnce("a.test", out _));
        Assert.Empty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(4, truncating.Queries); // asked again

        static async Task ReceiveExactly(Socket socket, byte[] buffer)
        {
            for (var got = 0; got < buffer.Length;)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None);
                got += n > 0 ? n : throw new SocketException((int)SocketError.ConnectionReset);
            }
        }
    }

    [Fact]
    public async Task ACachedFailure_KeepsItsReason_AsLongAsItsEntry()
    {
        // Reasons were kept for 1,024 names and 1 min, the cache holds 4,096 entries and a negative answer up to 5 min:
        // a cached failure could lose its reason, and its -v line said only "no address".
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var scheduler = new TestScheduler();
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([silent.EndPoint], scheduler: scheduler);
        for (var i = 0; i < 1100; i++)
        {
            Assert.Empty(await resolver.ResolveAsync($"bad{i}..test", cancel.Token)); // not a valid name: cached, no query
        }

        Assert.True(resolver.TryResolveAtOnce("bad0..test", out _));
        Assert.StartsWith("not a valid DNS name", resolver.FailureReason("bad0..test"));
        Assert.Equal(0, silent.Queries);

        using var authoritative = new DnsmasqFixture(authTtl: 300);
        using var toZone = Resolver([authoritative.EndPoint], scheduler: scheduler);
        Assert.Empty(await toZone.ResolveAsync("missing.test", cancel.Token));
        scheduler.AdvanceBy(TimeSpan.FromMinutes(2).Ticks);
        Assert.True(toZone.TryResolveAtOnce("missing.test", out _)); // cached for the zone's 5 min
        Assert.Equal($"no such name (NXDOMAIN from {authoritative.EndPoint})", toZone.FailureReason("missing.test"));
        scheduler.AdvanceBy(TimeSpan.FromMinutes(3).Ticks);
        Assert.False(toZone.TryResolveAtOnce("missing.test", out _));
        Assert.Null(toZone.FailureReason("missing.test")); // gone with its entry
    }

    [Fact]
    public async Task ANameThatIsNotAscii_FailsAtOnce_NotAfterEveryAttempt()
    {
        // The query carried '?' for each non-ASCII character, the server's answer repeated that question, and the
        // resolver ignored it as an answer to another name: every attempt timed out (8 queries, the whole deadline).
        using var cancel = new CancellationTokenSource(s_timeout);
        // An attempt that times out takes 4 s; the bound is half of it, room for a loaded machine (900 ms of 1 s left little).
        using var resolver = Resolver([_dnsmasq.EndPoint], attemptTimeout: TimeSpan.FromSeconds(4), total: TimeSpan.FromSeconds(16));
        var clock = Stopwatch.StartNew();
        Assert.Empty(await resolver.ResolveAsync("ex\u00e4mple.test", cancel.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task AFailedLookup_SaysWhy_EachWayItFails()
    {
        // The -v line said only "cannot resolve NAME", whatever happened; ss-server says why (each family's error).
        using var cancel = new CancellationTokenSource(s_timeout);
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([_dnsmasq.EndPoint]);
        Assert.Empty(await resolver.ResolveAsync("missing.test", cancel.Token));
        Assert.Equal($"no such name (NXDOMAIN from {_dnsmasq.EndPoint})", resolver.FailureReason("missing.test"));
        Assert.Equal($"no such name (NXDOMAIN from {_dnsmasq.EndPoint})", resolver.FailureReason("MISSING.test.")); // as the cache spells it

        Assert.Empty(await resolver.ResolveAsync("text-only.test", cancel.Token));
        Assert.Equal($"no A or AAAA record (from {_dnsmasq.EndPoint})", resolver.FailureReason("text-only.test"));

        Assert.Empty(await resolver.ResolveAsync("outside.example", cancel.Token)); // dnsmasq has no upstream
        Assert.Equal($"REFUSED from {_dnsmasq.EndPoint} (1 attempt; cached for 5 s)", resolver.FailureReason("outside.example"));

        Assert.Empty(await resolver.ResolveAsync("a..test", cancel.Token));
        Assert.StartsWith("not a valid DNS name", resolver.FailureReason("a..test"));

        using var toSilent = Resolver([silent.EndPoint], attemptTimeout: TimeSpan.FromMilliseconds(200), total: TimeSpan.FromSeconds(30), attempts: 2);
        Assert.Empty(await toSilent.ResolveAsync("a.test", cancel.Token));
        Assert.Equal($"no answer from {silent.EndPoint} (2 attempts)", toSilent.FailureReason("a.test"));

        // Each server's own reason, in the order they were asked.
        using var refusing = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], rcode: 5), false)]));
        // The attempt timeout bounds the refusing server's answer too: long enough for a loaded machine's thread pool.
        using var toBoth = Resolver([refusing.EndPoint, silent.EndPoint], attemptTimeout: TimeSpan.FromSeconds(2), total: TimeSpan.FromSeconds(30), attempts: 3);
        Assert.Empty(await toBoth.ResolveAsync("a.test", cancel.Token));
        Assert.Equal($"REFUSED from {refusing.EndPoint}; no answer from {silent.EndPoint} (3 attempts)", toBoth.FailureReason("a.test"));

        Assert.Null(resolver.FailureReason("a.test"));
        Assert.NotEmpty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Null(resolver.FailureReason("a.test"));
    }

    [Fact]
    public async Task AServerThatRefuses_IsNotAskedAgainForTheName_WhileAnotherServerIsLeft()
    {
        // A REFUSED (or SERVFAIL) answer is that server's answer: each of the 4 attempts asked it again at once, 8 queries
        // to a lone server per lookup (ss-server sends 4), and each of the others was asked again in turn.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var refusing = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], rcode: 5), false)]));
        using var failing = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], rcode: 2), false)]));
        using var alone = Resolver([refusing.EndPoint]);
        Assert.Empty(await alone.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(2, refusing.Queries); // A and AAAA, once
        Assert.Equal($"REFUSED from {refusing.EndPoint} (1 attempt; cached for 5 s)", alone.FailureReason("a.test"));

        using var both = Resolver([refusing.EndPoint, failing.EndPoint]);
        Assert.Empty(await both.ResolveAsync("b.test", cancel.Token));
        Assert.Equal(4, refusing.Queries);
        Assert.Equal(2, failing.Queries);
        Assert.Equal($"REFUSED from {refusing.EndPoint}; SERVFAIL from {failing.EndPoint} (2 attempts; cached for 5 s)", both.FailureReason("b.test"));

        // dnsmasq without an upstream refuses what is outside its zone.
        using var toDnsmasq = Resolver([_dnsmasq.EndPoint]);
        Assert.Empty(await toDnsmasq.ResolveAsync("outside.example", cancel.Token));
        Assert.Equal(2, toDnsmasq.QueriesSent);
    }

    [Fact]
    public async Task AServerFailure_IsCachedBriefly_AndTheReasonSaysSo()
    {
        // SERVFAIL and REFUSED were not cached at all: a flood of connections to a name its server is broken for sent a
        // lookup each. RFC 2308 § 7.1 allows caching them up to 5 min; 5 s here.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var failing = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], rcode: 2), false)]));
        var scheduler = new TestScheduler();
        using var resolver = Resolver([failing.EndPoint], scheduler: scheduler);
        Assert.Empty(await resolver.ResolveAsync("broken.test", cancel.Token));
        Assert.Equal(2, failing.Queries);
        for (var i = 0; i < 20; i++)
        {
            Assert.Empty(await resolver.ResolveAsync("broken.test", cancel.Token));
        }

        Assert.Equal(2, failing.Queries);
        Assert.Equal($"SERVFAIL from {failing.EndPoint} (1 attempt; cached for 5 s)", resolver.FailureReason("broken.test"));

        scheduler.AdvanceBy(TimeSpan.FromSeconds(5).Ticks);
        Assert.Empty(await resolver.ResolveAsync("broken.test", cancel.Token));
        Assert.Equal(4, failing.Queries);
    }

    [Fact]
    public async Task AServerThatAnswersLaterThanAnAttempt_IsHeardOnTheNextRound()
    {
        // Each attempt waited the same 1 s and closed its socket: an answer that takes 1.5 s (a recursive server still
        // asking) was never heard, and the server was asked again and again at the same pace. c-ares doubles its wait
        // each time round the servers.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var slow = new FakeDnsServer(async query =>
        {
            await Task.Delay(1500);
            return [(FakeDnsServer.Answer(query, [IPAddress.Parse("10.7.7.8")]), false)];
        });
        using var resolver = Resolver([slow.EndPoint], attemptTimeout: TimeSpan.FromSeconds(1), total: TimeSpan.FromSeconds(30));
        Assert.Equal([IPAddress.Parse("10.7.7.8")], await resolver.ResolveAsync("slow.test", cancel.Token));
    }

    private static bool IsAQuery(byte[] query)
    {
        var i = 12; // past the header: the question's name, then its type
        while (query[i] != 0)
        {
            i += query[i] + 1;
        }

        return query[i + 1] == 0 && query[i + 2] == 1;
    }

    [Fact]
    public async Task NoServerAnswers_EmptyWithinTheTotalDeadline()
    {
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([silent.EndPoint], attemptTimeout: TimeSpan.FromMilliseconds(100), total: TimeSpan.FromMilliseconds(1000));
        var clock = Stopwatch.StartNew();
        Assert.Empty(await resolver.ResolveAsync("a.test", CancellationToken.None));
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(5));
        Assert.True(silent.Queries >= 4);
    }

    [Fact]
    public async Task ConcurrentLookupsOfOneName_ShareOneQuery()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var slow = new FakeDnsServer(async query =>
        {
            await Task.Delay(300);
            return [(FakeDnsServer.Answer(query, [IPAddress.Parse("10.7.7.7")]), false)];
        });
        using var resolver = Resolver([slow.EndPoint]);
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => resolver.ResolveAsync("same.test", cancel.Token).AsTask()));
        Assert.All(results, r => Assert.Equal([IPAddress.Parse("10.7.7.7")], r));
        Assert.Equal(2, slow.Queries); // one A and one AAAA for all twenty
    }

    [Fact]
    public async Task ALookupEveryWaiterLeft_Ends_ButOneAnotherStillWaitsFor_GoesOn()
    {
        // A waiter that gave up (its client reset) returned, and freed its lookup slot, but the lookup it started ran on
        // for up to the total timeout: more lookups in flight than slots. Now the last to leave ends it.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var held = new FakeDnsServer(async query =>
        {
            await release.Task;
            return [(FakeDnsServer.Answer(query, [IPAddress.Parse("10.7.7.9")]), false)];
        });
        using var resolver = Resolver([held.EndPoint], attemptTimeout: TimeSpan.FromMinutes(10), total: TimeSpan.FromMinutes(10));

        // Alone: it leaves, the lookup ends; the next waiter's lookup asks again (it joined the old one, whose answer came).
        using (var gone = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token))
        {
            var first = resolver.ResolveAsync("alone.test", gone.Token).AsTask();
            await WaitFor(() => held.Queries == 2, cancel.Token);
            await gone.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        }

        var next = resolver.ResolveAsync("alone.test", cancel.Token).AsTask();
        await WaitFor(() => held.Queries == 4, cancel.Token);

        // Beside another: one leaves, the other still gets the answer of the one lookup.
        using (var gone = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token))
        {
            var leaving = resolver.ResolveAsync("shared.test", gone.Token).AsTask();
            var staying = resolver.ResolveAsync("shared.test", cancel.Token).AsTask();
            await WaitFor(() => held.Queries == 6, cancel.Token);
            await gone.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving);
            release.SetResult();
            Assert.Equal([IPAddress.Parse("10.7.7.9")], await staying);
        }

        Assert.Equal([IPAddress.Parse("10.7.7.9")], await next);
        Assert.Equal(6, held.Queries);

        static async Task WaitFor(Func<bool> condition, CancellationToken cancellationToken)
        {
            while (!condition())
            {
                await Task.Delay(20, cancellationToken);
            }
        }
    }

    [Fact]
    public async Task BadAnswersAreIgnored_TheGoodOneStillCounts_CacheNotPoisoned()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var good = IPAddress.Parse("10.8.8.8");
        var evil = IPAddress.Parse("6.6.6.6");
        using var hostile = new FakeDnsServer(async query =>
        {
            var forged = FakeDnsServer.Answer(query, [evil]);
            var wrongId = forged.ToArray();
            wrongId[0] ^= 0xFF;
            var wrongQuestion = forged.ToArray();
            wrongQuestion[13] ^= 0x20 ^ 0x01; // a different first letter
            var loop = forged.ToArray();
            loop[forged.Length - 16] = 0xC0; // the answer's name points at itself
            loop[forged.Length - 15] = (byte)(forged.Length - 16);
            await Task.Delay(50);
            return
            [
                (forged[..7], false), // truncated
                (wrongId, false),
                (wrongQuestion, false),
                (forged, true), // right bytes, wrong source port
                (System.Security.Cryptography.RandomNumberGenerator.GetBytes(1500), false), // noise
                (loop, false),
                (FakeDnsServer.Answer(query, [good]), false),
            ];
        });
        using var resolver = Resolver([hostile.EndPoint]);
        Assert.Equal([good], await resolver.ResolveAsync("name.test", cancel.Token));
        Assert.Equal([good], await resolver.ResolveAsync("name.test", cancel.Token));
    }

    [Fact]
    public async Task TruncatedAnswer_FallsBackToTcp()
    {
        using var cancel = new CancellationTokenSource(s_timeout);

        // dnsmasq's TCP port answers the retry. The resolver retries on the same port number over TCP, so the fake
        // takes a number free for both protocols (the number of a free UDP port may be a TCP port in use).
        var port = LoopbackPorts.Next();
        using var tcp = new TcpDnsForwarder(port, _dnsmasq.EndPoint);
        using var truncating = new FakeDnsServer(
            query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], truncated: true), false)]),
            port);
        using var resolver = Resolver([truncating.EndPoint]);
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.True(tcp.Connections >= 1);
    }

    [Fact]
    public async Task ATruncatedAnswer_WhoseTcpRetryIsRefused_IsSaidSo_NotAsAClosedUdpPort()
    {
        // The refused TCP connect was worded "port unreachable at ADDR", as the UDP port's ICMP is: the UDP port that
        // had just answered (truncated) read as closed. Nothing listens on TCP at the fake's port number (free for both).
        using var cancel = new CancellationTokenSource(s_timeout);
        using var truncating = new FakeDnsServer(
            query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], truncated: true), false)]),
            LoopbackPorts.Next());
        using var resolver = Resolver([truncating.EndPoint]);
        Assert.Empty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal($"TCP connection refused at {truncating.EndPoint} (1 attempt)", resolver.FailureReason("a.test"));
        Assert.False(resolver.TryResolveAtOnce("a.test", out _)); // not cached, as a closed port is not
    }

    [Theory]
    [InlineData(false)] // A answered, AAAA truncated (a large AAAA set)
    [InlineData(true)] // AAAA answered, A truncated
    public async Task OneFamilyTruncated_WhoseTcpRetryIsRefused_TheOtherFamilysAnswerIsStillUsed(bool aTruncated)
    {
        // A server that does not speak DNS over TCP (many home routers and cheap forwarders do not): one family's answer
        // comes truncated and its TCP retry is refused. The whole attempt was taken as "nothing listens there" and the
        // server passed over, the other family's good answer over UDP thrown away: the name did not resolve at all.
        using var cancel = new CancellationTokenSource(s_timeout);
        IPAddress[] good = [IPAddress.Parse("10.8.8.8"), IPAddress.Parse("fd00::88")];
        using var udpOnly = new FakeDnsServer(
            query => Task.FromResult<IEnumerable<(byte[], bool)>>(
                [(IsAQuery(query) == aTruncated ? FakeDnsServer.Answer(query, [], truncated: true) : FakeDnsServer.Answer(query, good), false)]),
            LoopbackPorts.Next()); // nothing listens on TCP at that port number
        using var resolver = Resolver([udpOnly.EndPoint]);
        var expected = aTruncated ? IPAddress.Parse("fd00::88") : IPAddress.Parse("10.8.8.8");
        Assert.Equal([expected], await resolver.ResolveAsync("big.test", cancel.Token));
        Assert.True(resolver.TryResolveAtOnce("big.test", out var cached)); // a good answer, cached as one
        Assert.Equal([expected], cached);
        Assert.Equal(2, udpOnly.Queries); // one attempt: the server was not asked again
    }

    [Fact]
    public async Task OneFamilyTruncated_WhoseTcpRetryIsRefused_BesideAnEmptyAnswer_PassesTheServerOver_Uncached()
    {
        // An empty answer for the other family says nothing about the refused one: no answer, said as the refused TCP
        // retry, and not cached (it says nothing about the name), as when both families' retries are refused.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var udpOnly = new FakeDnsServer(
            query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], truncated: !IsAQuery(query)), false)]),
            LoopbackPorts.Next());
        using var resolver = Resolver([udpOnly.EndPoint]);
        Assert.Empty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal($"TCP connection refused at {udpOnly.EndPoint} (1 attempt)", resolver.FailureReason("a.test"));
        Assert.False(resolver.TryResolveAtOnce("a.test", out _));
    }

    [Theory]
    [InlineData(CutOff.AtOnce)]
    [InlineData(CutOff.HalfAnAnswer)]
    [InlineData(CutOff.Reset)]
    public async Task OneFamilyTruncated_WhoseTcpRetryIsCutOff_TheOtherFamilysAnswerIsStillUsed(CutOff how)
    {
        // A forwarder that accepts TCP but drops the connection (or resets it) before a whole answer: the SocketException
        // (or the end of the stream) ended the whole attempt, the A answer over UDP was thrown away, each attempt the
        // same, and the name did not resolve. Now AAAA fails alone, as a refused TCP retry does.
        using var cancel = new CancellationTokenSource(s_timeout);
        IPAddress[] good = [IPAddress.Parse("10.8.8.8"), IPAddress.Parse("fd00::88")];
        var port = LoopbackPorts.Next();
        using var tcp = new CuttingTcpServer(port, how, good);
        using var udp = new FakeDnsServer(
            query => Task.FromResult<IEnumerable<(byte[], bool)>>(
                [(IsAQuery(query) ? FakeDnsServer.Answer(query, good) : FakeDnsServer.Answer(query, [], truncated: true), false)]),
            port);
        using var resolver = Resolver([udp.EndPoint]);
        Assert.Equal([IPAddress.Parse("10.8.8.8")], await resolver.ResolveAsync("big.test", cancel.Token));
        Assert.True(tcp.Connections >= 1);
        Assert.True(resolver.TryResolveAtOnce("big.test", out var cached)); // a good answer, cached as one
        Assert.Equal([IPAddress.Parse("10.8.8.8")], cached);
        Assert.Equal(2, udp.Queries); // one attempt
    }

    [Fact]
    public async Task BothFamiliesTruncated_WhoseTcpRetriesAreCutOff_PassTheServerOver_SaidSo_Uncached()
    {
        // As a broken answer over TCP: the server is passed over (one attempt, not four on it), and the failure, which
        // says nothing about the name, is not cached.
        using var cancel = new CancellationTokenSource(s_timeout);
        var port = LoopbackPorts.Next();
        using var tcp = new CuttingTcpServer(port, CutOff.Reset, []);
        using var udp = new FakeDnsServer(
            query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, [], truncated: true), false)]),
            port);
        using var resolver = Resolver([udp.EndPoint]);
        Assert.Empty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal($"TCP answer cut off at {udp.EndPoint} (1 attempt)", resolver.FailureReason("a.test"));
        Assert.False(resolver.TryResolveAtOnce("a.test", out _));
        Assert.Equal(2, udp.Queries);
    }

    [Theory]
    [InlineData(false)] // A silent, AAAA truncated and its TCP retry refused
    [InlineData(true)] // AAAA silent, A truncated and refused
    public async Task OneFamilysTcpRetryRefused_TheOtherSilent_TheReasonSaysBoth(bool aTruncated)
    {
        // The reason said only "no answer from ADDR": the refused TCP retry of the family that did answer was lost.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var udpOnly = new FakeDnsServer(
            query => Task.FromResult<IEnumerable<(byte[], bool)>>(
                IsAQuery(query) == aTruncated ? [(FakeDnsServer.Answer(query, [], truncated: true), false)] : []),
            LoopbackPorts.Next()); // nothing listens on TCP at that port number
        // One attempt of 3 s: the refusal comes at once on loopback, the silent family's wait ends the attempt.
        using var resolver = Resolver([udpOnly.EndPoint], attemptTimeout: TimeSpan.FromSeconds(3), total: TimeSpan.FromSeconds(30), attempts: 1);
        Assert.Empty(await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(
            $"no answer from {udpOnly.EndPoint} ({(aTruncated ? "A" : "AAAA")}: TCP connection refused) (1 attempt)",
            resolver.FailureReason("a.test"));
    }

    [Fact]
    public async Task AnAnswerOverUdpLongerThan512Bytes_IsAskedAgainOverTcp()
    {
        // The queries carry no EDNS OPT record, so a UDP answer is at most 512 bytes (RFC 1035 § 4.2.1); each query rented
        // a 64 KiB buffer for it. Now the buffer holds what may come, and a longer datagram (perhaps cut by the buffer) is
        // taken as truncated: the answer is asked for over TCP, where dnsmasq (behind the forwarder) answers.
        using var cancel = new CancellationTokenSource(s_timeout);
        var port = LoopbackPorts.Next();
        using var tcp = new TcpDnsForwarder(port, _dnsmasq.EndPoint);
        var many = Enumerable.Range(1, 40).Select(i => IPAddress.Parse($"10.66.0.{i}")).ToArray(); // 40 A records: about 700 bytes
        using var oversized = new FakeDnsServer(query => Task.FromResult<IEnumerable<(byte[], bool)>>([(FakeDnsServer.Answer(query, many), false)]), port);
        using var resolver = Resolver([oversized.EndPoint]);
        Assert.Equal([IPAddress.Parse("10.1.2.3")], await resolver.ResolveAsync("a.test", cancel.Token));
        Assert.Equal(1, tcp.Connections);
    }

    [Fact]
    public async Task LiteralsAndHostsFile_AnswerWithoutAQuery()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        File.WriteAllLines(_emptyHosts, ["10.3.3.3 from-hosts.test alias-in-hosts # comment", "# 10.4.4.4 commented.test"]);
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([silent.EndPoint]);
        Assert.Equal([IPAddress.Parse("10.3.3.3")], await resolver.ResolveAsync("from-hosts.test", cancel.Token));
        Assert.Equal([IPAddress.Parse("10.3.3.3")], await resolver.ResolveAsync("ALIAS-IN-HOSTS", cancel.Token));
        Assert.Equal([IPAddress.Parse("::1")], await resolver.ResolveAsync("::1", cancel.Token));
        Assert.Equal(0, silent.Queries);
    }

    [Fact]
    public void AnEditedHostsFile_CountsWithinSeconds_WithoutARestart()
    {
        // ss-server (c-ares) reads /etc/hosts at each lookup; ours read it once, at start, and an operator's pin of a
        // name (or its removal) took a restart.
        var time = new ManualTimeProvider();
        File.WriteAllLines(_emptyHosts, ["10.3.3.3 pinned.test"]);
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([silent.EndPoint], time: time);
        Assert.True(resolver.TryResolveAtOnce("pinned.test", out var before));
        Assert.Equal([IPAddress.Parse("10.3.3.3")], before);

        File.WriteAllLines(_emptyHosts, ["10.4.4.4 pinned.test", "10.5.5.5 added.test"]);
        File.SetLastWriteTimeUtc(_emptyHosts, DateTime.UtcNow.AddMinutes(1)); // a change even where file times are coarse
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(resolver.TryResolveAtOnce("pinned.test", out var after));
        Assert.Equal([IPAddress.Parse("10.4.4.4")], after);
        Assert.True(resolver.TryResolveAtOnce("added.test", out var added));
        Assert.Equal([IPAddress.Parse("10.5.5.5")], added);

        File.WriteAllLines(_emptyHosts, ["# nothing pinned"]);
        File.SetLastWriteTimeUtc(_emptyHosts, DateTime.UtcNow.AddMinutes(2));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(resolver.TryResolveAtOnce("pinned.test", out _));
        Assert.Equal(0, silent.Queries);
    }

    [Fact]
    public void AHostsFileEdit_ThatKeepsItsLengthAndTime_StillCounts()
    {
        // Only the file's time and length were compared: an edit of the same length within one tick of the file
        // system's clock (or a copy that kept the time) was never seen, until some other edit.
        var time = new ManualTimeProvider();
        var written = DateTime.UtcNow.AddMinutes(-1);
        File.WriteAllLines(_emptyHosts, ["10.3.3.3 pinned.test"]);
        File.SetLastWriteTimeUtc(_emptyHosts, written);
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([silent.EndPoint], time: time);
        Assert.True(resolver.TryResolveAtOnce("pinned.test", out var before));
        Assert.Equal([IPAddress.Parse("10.3.3.3")], before);

        File.WriteAllLines(_emptyHosts, ["10.4.4.4 pinned.test"]);
        File.SetLastWriteTimeUtc(_emptyHosts, written);
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(resolver.TryResolveAtOnce("pinned.test", out var after));
        Assert.Equal([IPAddress.Parse("10.4.4.4")], after);
        Assert.Equal(0, silent.Queries);
    }

    [Fact]
    public async Task AHostsFileBeingReadAgain_KeepsNoOtherLookupWaiting()
    {
        // The reload read the file under the lock that every lookup due for a look at it took: a slow read (a large file,
        // a hung file system; here a FIFO nobody writes yet) held every lookup, cache hits too, until it ended.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var time = new ManualTimeProvider();
        File.WriteAllLines(_emptyHosts, ["10.3.3.3 pinned.test"]);
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([silent.EndPoint], time: time);
        File.Delete(_emptyHosts);
        using (var mkfifo = Process.Start("mkfifo", [_emptyHosts]))
        {
            await mkfifo.WaitForExitAsync(cancel.Token);
            Assert.Equal(0, mkfifo.ExitCode);
        }

        time.Advance(TimeSpan.FromSeconds(5));
        // Opening the FIFO to write completes once the resolver has opened it to read: it is then inside its reload.
        var opened = Task.Run(() => new FileStream(_emptyHosts, FileMode.Open, FileAccess.Write), cancel.Token);
        var reloading = Task.Run(() => resolver.TryResolveAtOnce("pinned.test", out var found) ? found : null, cancel.Token);
        await using var writer = await opened.WaitAsync(cancel.Token);

        var meanwhile = Task.Run(() => resolver.TryResolveAtOnce("pinned.test", out var found) ? found : null, cancel.Token);
        Assert.Equal([IPAddress.Parse("10.3.3.3")], await meanwhile.WaitAsync(cancel.Token)); // the table it has
        Assert.False(reloading.IsCompleted);

        await writer.WriteAsync("10.4.4.4 pinned.test\n"u8.ToArray(), cancel.Token);
        await writer.DisposeAsync();
        Assert.Equal([IPAddress.Parse("10.4.4.4")], await reloading.WaitAsync(cancel.Token));
        Assert.True(resolver.TryResolveAtOnce("pinned.test", out var after));
        Assert.Equal([IPAddress.Parse("10.4.4.4")], after);
    }

    [Theory]
    [InlineData("[::1]:22")]
    [InlineData("[127.0.0.1]")]
    [InlineData("[::1]")]
    public void ABracketedName_IsNotTakenForTheAddressInside(string name)
    {
        // IPAddress.TryParse takes "[::1]:22" for ::1 (the port dropped): a name from the wire spelled so would reach
        // ::1 on the request's port; ss-libev's lookup of it fails.
        using var silent = new FakeDnsServer(_ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver([silent.EndPoint]);
        Assert.False(resolver.TryResolveAtOnce(name, out var addresses));
        Assert.Empty(addresses);
        Assert.True(resolver.TryResolveAtOnce("::1", out var literal));
        Assert.Equal([IPAddress.IPv6Loopback], literal);
    }

    /// <summary>A loopback UDP port that nothing listens on (bound, then closed): the kernel answers it with ICMP port unreachable.</summary>
    private static IPEndPoint ClosedUdpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return (IPEndPoint)probe.LocalEndPoint!;
    }

    private DnsResolver Resolver(IPEndPoint[] servers, bool ipv6First = false, IScheduler? scheduler = null, TimeSpan? attemptTimeout = null, TimeSpan? total = null, int attempts = 4, TimeProvider? time = null) =>
        new(new DnsResolverOptions
        {
            Attempts = attempts,
            Servers = servers,
            HostsPath = _emptyHosts,
            Ipv6First = ipv6First,
            AttemptTimeout = attemptTimeout ?? TimeSpan.FromSeconds(2),
            TotalTimeout = total ?? TimeSpan.FromSeconds(10),
        }, scheduler ?? ProgramScheduler.Instance, time ?? TimeProvider.System);

    public enum CutOff
    {
        /// <summary>Accepted and closed at once (a FIN, or a reset when the query had come already).</summary>
        AtOnce,

        /// <summary>The query read, then half an answer (its whole length announced) and the end of the stream.</summary>
        HalfAnAnswer,

        /// <summary>Accepted and reset (linger 0).</summary>
        Reset,
    }

    /// <summary>Listens on TCP at <paramref name="port"/> (on 127.0.0.1) and cuts each connection off before a whole answer.</summary>
    private sealed class CuttingTcpServer : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private int _connections;

        public CuttingTcpServer(int port, CutOff how, IPAddress[] addresses)
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
            _listener.Listen();
            _ = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        using var connection = await _listener.AcceptAsync();
                        Interlocked.Increment(ref _connections);
                        switch (how)
                        {
                            case CutOff.Reset:
                                connection.LingerState = new LingerOption(true, 0);
                                break;
                            case CutOff.HalfAnAnswer:
                                var prefix = new byte[2];
                                await ReceiveExactly(connection, prefix);
                                var query = new byte[(prefix[0] << 8) | prefix[1]];
                                await ReceiveExactly(connection, query);
                                var answer = FakeDnsServer.Answer(query, addresses);
                                await connection.SendAsync(new byte[] { (byte)(answer.Length >> 8), (byte)answer.Length }.Concat(answer[..(answer.Length / 2)]).ToArray(), SocketFlags.None);
                                connection.Shutdown(SocketShutdown.Both);
                                break;
                        }
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // Disposed.
                }
            });
        }

        public int Connections => Volatile.Read(ref _connections);

        public void Dispose() => _listener.Dispose();

        private static async Task ReceiveExactly(Socket socket, byte[] buffer)
        {
            for (var got = 0; got < buffer.Length;)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None);
                got += n > 0 ? n : throw new SocketException((int)SocketError.ConnectionReset);
            }
        }
    }

    /// <summary>Listens on TCP at <paramref name="port"/> (on 127.0.0.1) and forwards each connection to dnsmasq's TCP port.</summary>
    private sealed class TcpDnsForwarder : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private int _connections;

        public TcpDnsForwarder(int port, IPEndPoint target)
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
            _listener.Listen();
            _ = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        var client = await _listener.AcceptAsync();
                        Interlocked.Increment(ref _connections);
                        var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                        await upstream.ConnectAsync(target);
                        _ = Pump(client, upstream);
                        _ = Pump(upstream, client);
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // Disposed.
                }
            });
        }

        public int Connections => Volatile.Read(ref _connections);

        public void Dispose() => _listener.Dispose();

        private static async Task Pump(Socket from, Socket to)
        {
            var buffer = new byte[4096];
            try
            {
                int n;
                while ((n = await from.ReceiveAsync(buffer)) > 0)
                {
                    await to.SendAsync(buffer.AsMemory(0, n));
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Either side closed.
            }
            finally
            {
                from.Dispose();
                to.Dispose();
            }
        }
    }
}
