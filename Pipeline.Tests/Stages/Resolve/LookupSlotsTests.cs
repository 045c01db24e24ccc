using System.Net;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Resolve;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Resolve;

/// <summary>
/// The lookup slots count lookups, not callers: the callers of a name that has a slot join its lookup (the resolver
/// shares one among them) without a slot of their own, and the slot is free again once the last of them has left.
/// Each caller took a slot: a burst of connections to one slow name took them all, and other names waited behind it.
/// Against the real resolver and a name server on loopback that reads and stays silent (or answers when told).
/// </summary>
public sealed class LookupSlotsTests
{
    private const int Callers = 8;

    [Fact]
    public async Task CallersOfANameWithALookupInFlight_JoinIt_WhileAnotherNameWaitsForTheSlot()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var silent = new FakeDnsServer(static _ => Task.FromResult(Enumerable.Empty<(byte[], bool)>()));
        using var resolver = Resolver(silent.EndPoint);
        var slots = new LookupSlots(1);
        var callers = Enumerable.Range(0, Callers).Select(_ => CancellationTokenSource.CreateLinkedTokenSource(cancel.Token)).ToList();
        using var otherCaller = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token);
        try
        {
            // Spelled as the resolver tells names apart: the same name whatever its case and root dot.
            var same = callers.Select((c, i) => slots.LookUpAsync(resolver, i % 2 == 0 ? "slow.test" : "SLOW.Test.", c.Token).AsTask()).ToList();
            var other = slots.LookUpAsync(resolver, "other.test", otherCaller.Token).AsTask();
            await UntilAsync(() => silent.Queries >= 2, cancel.Token); // the one lookup's A and AAAA

            Assert.Equal(1, slots.Waiting); // the other name alone: every caller of slow.test is in its lookup
            Assert.Equal(2, slots.Names);
            Assert.Equal(0, slots.Free);
            Assert.Equal(2, resolver.QueriesSent);

            // The first caller leaves: the lookup goes on for the others, in the same slot.
            await callers[0].CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => same[0]);
            Assert.False(other.IsCompleted);
            Assert.Equal(1, slots.Waiting);
            Assert.Equal(2, resolver.QueriesSent);

            // The last leaves: the slot goes to the other name, whose lookup starts.
            foreach (var caller in callers.Skip(1))
            {
                await caller.CancelAsync();
            }

            foreach (var task in same.Skip(1))
            {
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
            }

            await UntilAsync(() => silent.Queries >= 4, cancel.Token);
            Assert.Equal(0, slots.Waiting);
            Assert.Equal(1, slots.Names);

            await otherCaller.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => other);
            Assert.Equal(1, slots.Free);
            Assert.Equal(0, slots.Names);
        }
        finally
        {
            callers.ForEach(static c => c.Dispose());
        }
    }

    [Fact]
    public async Task AJoinerWhoseFirstCallerLeft_GetsTheAnswer_AndCallersThatGaveUpWaiting_LeaveNoSlotOrEntryBehind()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var answer = IPAddress.Parse("10.7.7.7");
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var gated = new FakeDnsServer(async query =>
        {
            await open.Task;
            return [(FakeDnsServer.Answer(query, [answer]), false)];
        });
        using var resolver = Resolver(gated.EndPoint);
        var time = new ManualTimeProvider();
        var slots = new LookupSlots(1);
        using var firstCaller = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token);
        using var goneCaller = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token);

        var first = slots.LookUpAsync(resolver, "held.test", firstCaller.Token).AsTask();
        var joiner = slots.LookUpAsync(resolver, "held.test", cancel.Token).AsTask();
        await UntilAsync(() => gated.Queries >= 2, cancel.Token);

        // A name queued for the slot whose callers all give up (one at its deadline, one cancelled): it leaves no entry.
        var timesOut = slots.LookUpAsync(resolver, "gone.test", cancel.Token, TimeSpan.FromSeconds(5), time).AsTask();
        var cancelled = slots.LookUpAsync(resolver, "gone.test", goneCaller.Token).AsTask();
        // And one whose callers wait on: it gets the slot, all of them together.
        var next = Enumerable.Range(0, 3).Select(_ => slots.LookUpAsync(resolver, "next.test", cancel.Token).AsTask()).ToList();
        Assert.Equal(5, slots.Waiting);
        Assert.Equal(3, slots.Names);

        time.Advance(TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<TimeoutException>(() => timesOut);
        await goneCaller.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal(3, slots.Waiting);
        Assert.Equal(2, slots.Names);

        // The first caller of held.test leaves; the lookup goes on for the joiner, which gets the answer.
        await firstCaller.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        Assert.False(joiner.IsCompleted);
        open.SetResult();
        Assert.Equal([answer], await joiner.WaitAsync(cancel.Token));
        foreach (var task in next)
        {
            Assert.Equal([answer], await task.WaitAsync(cancel.Token));
        }

        Assert.Equal(4, resolver.QueriesSent); // held.test's A and AAAA, then next.test's: one lookup each
        Assert.Equal(0, slots.Waiting);
        Assert.Equal(1, slots.Free);
        Assert.Equal(0, slots.Names);
    }

    [Fact]
    public async Task ANameWhoseLookupHasEnded_DoesNotKeepItsSlotForTheNextOne_WhileAnotherNameWaits()
    {
        // A caller that came after its name's lookup had ended (an answer not cached: a failure, or the moment before
        // the cache had it) but before that lookup's last caller had left joined the slot and started the next lookup
        // in it: under a steady stream of connections or datagrams to one name whose lookups fail, the name kept its
        // slot lookup after lookup, and a name queued for it waited on (the UDP stage's lookups, with no limit). Each
        // call to this resolver is a lookup of its own, so the stream is played step by step.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var resolver = new StepResolver();
        var slots = new LookupSlots(1);

        var first = slots.LookUpAsync(resolver, "hot.test", cancel.Token).AsTask(); // the slot; call 0
        var other = slots.LookUpAsync(resolver, "other.test", cancel.Token).AsTask(); // queued
        var during = slots.LookUpAsync(resolver, "hot.test", cancel.Token).AsTask(); // joins the name's slot; call 1
        Assert.Equal(["hot.test", "hot.test"], resolver.Hosts);

        resolver.Answer(0);
        await first.WaitAsync(cancel.Token); // hot.test's lookup has ended ...
        var after = slots.LookUpAsync(resolver, "hot.test", cancel.Token).AsTask(); // ... and one more comes: behind other.test
        resolver.Answer(1);
        await during.WaitAsync(cancel.Token);

        await UntilAsync(() => resolver.Hosts.Count >= 3, cancel.Token);
        Assert.Equal("other.test", resolver.Hosts[2]); // was hot.test again: other.test waited for as long as the stream went on
        Assert.False(after.IsCompleted);
        Assert.Equal(1, slots.Waiting);

        resolver.Answer(2);
        await other.WaitAsync(cancel.Token);
        await UntilAsync(() => resolver.Hosts.Count >= 4, cancel.Token);
        resolver.Answer(3);
        await after.WaitAsync(cancel.Token);
        Assert.Equal(["hot.test", "hot.test", "other.test", "hot.test"], resolver.Hosts);
        Assert.Equal(0, slots.Waiting);
        Assert.Equal(1, slots.Free);
        Assert.Equal(0, slots.Names);
    }

    /// <summary>The real resolver with <paramref name="server"/> alone, one attempt that outlasts the test: no retry sends more queries.</summary>
    private static DnsResolver Resolver(IPEndPoint server) =>
        new(
            new DnsResolverOptions
            {
                Servers = [server],
                HostsPath = "/nonexistent/hosts",
                Attempts = 1,
                AttemptTimeout = TimeSpan.FromSeconds(60),
                TotalTimeout = TimeSpan.FromSeconds(60),
            },
            ProgramScheduler.Instance,
            TimeProvider.System);

    private static async Task UntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition())
        {
            await Task.Delay(10, cancellationToken);
        }
    }
}
