using System.Net;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Udp;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Udp;

/// <summary>The local's and tunnel's UDP server address: a name followed as the resolver's answer changes, never asked per datagram.</summary>
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
