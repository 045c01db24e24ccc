using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connect;
using Shadowsocks.Pipeline.Stages.Udp;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Connect;

namespace Shadowsocks.Pipeline.Tests.Stages.Udp;

/// <summary>
/// The local's and tunnel's UDP server address: a name followed as the resolver's answer changes, never asked per
/// datagram; with several servers, TCP's circuits followed to another server and back.
/// </summary>
public sealed class UdpServerAddressTests
{
    private static readonly IPEndPoint s_first = new(IPAddress.Parse("10.0.0.1"), 8388);

    [Fact]
    public void Current_AsksTheResolverAtMostOnceASecond_AndMovesOnlyWhenTheAnswerNoLongerHoldsTheAddress()
    {
        var time = new ManualTimeProvider();
        var resolver = new ScriptedResolver { Known = [IPAddress.Parse("10.0.0.1")] };
        var address = new UdpServerAddress("server.test", s_first, resolver, time);
        var moves = new List<IPEndPoint>();
        address.Changed += moves.Add;

        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(s_first, address.Current);
        }

        Assert.Equal(0, resolver.AskedAtOnce); // the address was just looked up, at start

        time.Advance(TimeSpan.FromSeconds(1));
        resolver.Known = [IPAddress.Parse("10.0.0.2"), IPAddress.Parse("10.0.0.1")]; // another order, the same server
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(s_first, address.Current);
        }

        Assert.Equal(1, resolver.AskedAtOnce);
        Assert.Empty(moves);

        time.Advance(TimeSpan.FromSeconds(1));
        resolver.Known = [IPAddress.Parse("::ffff:10.0.0.3"), IPAddress.Parse("10.0.0.4")];
        var moved = new IPEndPoint(IPAddress.Parse("10.0.0.3"), 8388);
        Assert.Equal(moved, address.Current);
        Assert.Equal(moved, address.Address);
        Assert.Equal([moved], moves);
        Assert.Equal(0, resolver.LookedUp);
    }

    [Fact]
    public async Task Current_WhenTheResolverMustAsk_LooksUpOnceInTheBackground_AndTheNextDatagramTakesTheAnswer()
    {
        var time = new ManualTimeProvider();
        var answer = new TaskCompletionSource<IPAddress[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var resolver = new ScriptedResolver { Lookup = answer.Task };
        var address = new UdpServerAddress("server.test", s_first, resolver, time);
        var moves = new List<IPEndPoint>();
        address.Changed += moves.Add;

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(s_first, address.Current); // the datagram does not wait for the lookup
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(s_first, address.Current);
        Assert.Equal(1, resolver.LookedUp); // the first is still under way

        answer.SetResult([IPAddress.Parse("10.0.0.9")]);
        var moved = new IPEndPoint(IPAddress.Parse("10.0.0.9"), 8388);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!address.Current.Equals(moved))
        {
            await Task.Delay(10, deadline.Token); // bounded by the deadline only: the lookup's continuation runs on the pool
        }

        Assert.Equal([moved], moves);
    }

    [Fact]
    public async Task Current_AfterALookupThatFindsNothing_KeepsTheAddressInUse()
    {
        var time = new ManualTimeProvider();
        var resolver = new ScriptedResolver { Lookup = Task.FromResult<IPAddress[]>([]) };
        var address = new UdpServerAddress("server.test", s_first, resolver, time);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(s_first, address.Current);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (resolver.LookedUp == 0)
        {
            await Task.Delay(10, deadline.Token);
        }

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(s_first, address.Current);
    }

    [Fact]
    public async Task Follow_TheServerInUseSkipped_MovesToTheNext_AndBackOnceTheFirstAnswersAgain()
    {
        // UDP stayed with the first server when it stopped answering, while TCP went on to the next.
        var time = new ManualTimeProvider(); // retries off: their delays would wait on it
        var second = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 8389);
        var failover = new ServerFailover([s_first, second], TimeSpan.FromSeconds(10), retries: 0, time);
        var address = new UdpServerAddress([s_first, second], 0, s_first, null, time);
        var moves = new List<string>();
        var changes = new List<IPEndPoint>();
        address.Moved += (from, to, failed) => moves.Add($"{from} -> {to} {(failed ? "failed" : "answers")}");
        address.Changed += changes.Add;
        address.Follow(failover);
        var firstAnswers = false;

        for (var i = 0; i < 4; i++) // the first two open the first server's circuit; the others skip it
        {
            await FailoverConnections.ConnectAsync(failover, s => !s.Equals(s_first) || firstAnswers);
        }

        Assert.Equal(second, address.Current);
        Assert.Equal(second, address.Address);
        Assert.Equal(["10.0.0.1:8388 -> 10.0.0.2:8389 failed"], moves); // once, not per connection
        Assert.Equal([second], changes);

        time.Advance(ServerFailover.BreakDuration + TimeSpan.FromSeconds(1)); // the next connection tries the first again
        firstAnswers = true;
        await FailoverConnections.ConnectAsync(failover, s => !s.Equals(s_first) || firstAnswers);

        Assert.Equal(s_first, address.Current);
        Assert.Equal(["10.0.0.1:8388 -> 10.0.0.2:8389 failed", "10.0.0.2:8389 -> 10.0.0.1:8388 answers"], moves);
        Assert.Equal([second, s_first], changes);
    }

    [Fact]
    public async Task Follow_EveryServerSkipped_UdpStaysWithTheLastItWentTo()
    {
        var time = new ManualTimeProvider();
        var second = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 8389);
        var failover = new ServerFailover([s_first, second], TimeSpan.FromSeconds(10), retries: 0, time);
        var address = new UdpServerAddress([s_first, second], 0, s_first, null, time);
        var moves = new List<EndPoint>();
        address.Moved += (_, to, _) => moves.Add(to);
        address.Follow(failover);

        for (var i = 0; i < 2; i++)
        {
            await FailoverConnections.ConnectAsync(failover, static _ => false); // each connection: the first refuses, then the second
        }

        Assert.True(failover.IsSkipped(s_first) && failover.IsSkipped(second));
        Assert.Equal([second], moves); // away from the first; the second's circuit opening after has nowhere better to go
        Assert.Equal(second, address.Current);
    }

    [Fact]
    public async Task Follow_EveryServerSkipped_ALaterOneThatAnswersAgain_TakesUdpFromTheOneInUse()
    {
        // The second's circuit opens first (the first had answered before, its failures a smaller share), then the
        // first's: UDP, on the first, has nowhere to go. When the second answers again and the first does not, UDP
        // stayed on the first, skipped by TCP, until the first came back: only an earlier server took UDP back.
        var time = new ManualTimeProvider();
        var second = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 8389);
        var failover = new ServerFailover([s_first, second], TimeSpan.FromSeconds(10), retries: 0, time);
        var address = new UdpServerAddress([s_first, second], 0, s_first, null, time);
        var moves = new List<string>();
        var changes = new List<IPEndPoint>();
        address.Moved += (from, to, failed) => moves.Add($"{from} -> {to} {(failed ? "failed" : "answers")}");
        address.Changed += changes.Add;
        address.Follow(failover);

        for (var i = 0; i < 3; i++)
        {
            await FailoverConnections.ConnectAsync(failover, s => s.Equals(s_first)); // the first answers: its later failures weigh less
        }

        for (var i = 0; i < 3; i++)
        {
            await FailoverConnections.ConnectAsync(failover, static _ => false); // the second's circuit opens at the second, the first's at the third
        }

        Assert.True(failover.IsSkipped(s_first) && failover.IsSkipped(second));
        Assert.Empty(moves); // nowhere to go
        Assert.Equal(s_first, address.Current);

        time.Advance(ServerFailover.BreakDuration + TimeSpan.FromSeconds(1));
        await FailoverConnections.ConnectAsync(failover, s => s.Equals(second)); // the first fails its trial again; the second answers

        Assert.True(failover.IsSkipped(s_first));
        Assert.False(failover.IsSkipped(second));
        Assert.Equal(second, address.Current);
        Assert.Equal(["10.0.0.1:8388 -> 10.0.0.2:8389 failed"], moves);
        Assert.Equal([second], changes);

        time.Advance(ServerFailover.BreakDuration + TimeSpan.FromSeconds(1));
        await FailoverConnections.ConnectAsync(failover, static _ => true); // the first answers again: back to it
        Assert.Equal(s_first, address.Current);
        Assert.Equal(["10.0.0.1:8388 -> 10.0.0.2:8389 failed", "10.0.0.2:8389 -> 10.0.0.1:8388 answers"], moves);
    }

    [Fact]
    public async Task Follow_ToAServerGivenByNameNotYetLookedUp_TakesItsAddressFromTheResolver_AtTheNextDatagram()
    {
        // The name's address is the first's, on another port: the first's address in use must not pass for the name's.
        var time = new ManualTimeProvider();
        var named = new DnsEndPoint("second.test", 8389);
        var failover = new ServerFailover([s_first, named], TimeSpan.FromSeconds(10), retries: 0, time);
        var resolver = new ScriptedResolver { Known = [IPAddress.Parse("10.0.0.1")] };
        var address = new UdpServerAddress([s_first, named], 0, s_first, resolver, time);
        var changes = new List<IPEndPoint>();
        address.Changed += changes.Add;
        address.Follow(failover);

        for (var i = 0; i < 2; i++)
        {
            await FailoverConnections.ConnectAsync(failover, s => !s.Equals(s_first));
        }

        Assert.Empty(changes); // no address known yet: nothing asked on the connection's thread
        var moved = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 8389);
        Assert.Equal(moved, address.Current);
        Assert.Equal([moved], changes);
        Assert.Equal(1, resolver.AskedAtOnce);
    }

    /// <summary>A resolver whose cache holds <see cref="Known"/> (or nothing), and whose lookups answer <see cref="Lookup"/>.</summary>
    private sealed class ScriptedResolver : IDnsResolver
    {
        private int _askedAtOnce;
        private int _lookedUp;

        public IPAddress[]? Known { get; set; }

        public Task<IPAddress[]> Lookup { get; set; } = Task.FromResult<IPAddress[]>([]);

        public int AskedAtOnce => Volatile.Read(ref _askedAtOnce);

        public int LookedUp => Volatile.Read(ref _lookedUp);

        public ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _lookedUp);
            return new ValueTask<IPAddress[]>(Lookup);
        }

        public bool TryResolveAtOnce(string host, out IPAddress[] addresses)
        {
            Interlocked.Increment(ref _askedAtOnce);
            addresses = Known ?? [];
            return Known is not null;
        }
    }
}
