using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Stages.Udp;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Udp;

/// <summary>
/// A UDP stage whose work throws on one datagram drops that datagram and serves the next: a Dataflow block whose
/// delegate throws is faulted for good, the fault went down the linked blocks, and the relay's UDP stopped for every client.
/// </summary>
public sealed class UdpStageGuardTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private static readonly IPEndPoint s_client = new(IPAddress.Loopback, 5353);

    [Fact]
    public async Task AStageThatThrowsOnOneDatagram_DropsItReturnsItsBuffer_AndServesTheNext()
    {
        using var counts = new FaultCounts();
        var stage = Stage();
        var block = new TransformManyBlock<Datagram, Datagram>(UdpStageGuard.Isolate(stage, d => d.Length == 1 ? throw new InvalidOperationException("a bug") : [d]));
        await ThrowsOnTheFirst_ServesTheSecondAsync(block, counts, stage);
    }

    [Fact]
    public async Task AStageFault_IsRecordedInASpanNamedAfterTheStage_WithTheException()
    {
        // The counters say which stage faulted, not what it threw: the span says that, for a bug report.
        using var spans = new ConnectionSpans();
        var stage = Stage();
        var block = new TransformManyBlock<Datagram, Datagram>(UdpStageGuard.Isolate(stage, IEnumerable<Datagram> (d) => throw new InvalidOperationException("a bug")));
        Assert.True(block.Post(Datagram.Wrap(Datagram.RentBuffer(), 1, s_client)));

        var span = await spans.EndedAsync(a => a.OperationName == stage, s_wait);
        Assert.NotNull(span);
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal("InvalidOperationException: a bug", span.StatusDescription);
        Assert.Contains(span.Events, e => e.Name == "exception" && e.Tags.Any(t => t.Key == "exception.type" && (t.Value as string)!.EndsWith("InvalidOperationException", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task AStageThatDroppedTheDatagramBeforeItThrew_CountsTheFault_ButNotASecondDrop()
    {
        using var counts = new FaultCounts();
        var (stage, reason) = (Stage(), $"test drop {Guid.NewGuid():N}");
        var block = new TransformManyBlock<Datagram, Datagram>(UdpStageGuard.Isolate(stage, d =>
        {
            if (d.Length == 1)
            {
                UdpCounters.Drop(d, reason);
                throw new InvalidOperationException("a bug after the drop");
            }

            return [d];
        }));
        var (bad, good) = (Datagram.Wrap(Datagram.RentBuffer(), 1, s_client), Datagram.Wrap(Datagram.RentBuffer(), 2, s_client));

        Assert.True(block.Post(bad));
        Assert.True(block.Post(good));

        Assert.Same(good, await block.ReceiveAsync(s_wait));
        Assert.True(bad.Returned);
        Assert.Equal(1, counts.Faults(stage));
        Assert.Equal(1, counts.Drops(reason));
        Assert.Equal(0, counts.Drops($"stage fault in {stage}"));
        good.Return();
    }

    [Fact]
    public async Task AStageThatThrowsAfterWaiting_DropsThatDatagram_AndServesTheNext()
    {
        using var counts = new FaultCounts();
        var stage = Stage();
        var block = new TransformManyBlock<Datagram, Datagram>(UdpStageGuard.Isolate(stage, async d =>
        {
            await Task.Yield();
            return d.Length == 1 ? throw new InvalidOperationException("a bug, later") : (IEnumerable<Datagram>)[d];
        }));
        await ThrowsOnTheFirst_ServesTheSecondAsync(block, counts, stage);
    }

    [Fact]
    public async Task ASendStageThatThrowsOnOneDatagram_DropsIt_AndSendsTheNext()
    {
        using var counts = new FaultCounts();
        var stage = Stage();
        var sent = new TaskCompletionSource<Datagram>(TaskCreationOptions.RunContinuationsAsynchronously);
        var block = new ActionBlock<Datagram>(UdpStageGuard.Isolate(stage, d =>
        {
            if (d.Length == 1)
            {
                throw new InvalidOperationException("a bug");
            }

            sent.SetResult(d);
            d.Return();
        }));
        var (bad, good) = (Datagram.Wrap(Datagram.RentBuffer(), 1, s_client), Datagram.Wrap(Datagram.RentBuffer(), 2, s_client));

        Assert.True(block.Post(bad));
        Assert.True(block.Post(good));

        Assert.Same(good, await sent.Task.WaitAsync(s_wait));
        Assert.False(block.Completion.IsFaulted);
        Assert.True(bad.Returned);
        Assert.Equal(1, counts.Faults(stage));
        Assert.Equal(1, counts.Drops($"stage fault in {stage}"));
    }

    /// <summary>
    /// A real relay: the server's resolve stage awaits a resolver that throws (a bug nobody foresaw): that datagram is
    /// dropped and counted, and the next datagrams, to a name and to an address, are relayed.
    /// </summary>
    [Fact]
    public async Task Server_AResolverThatThrows_CostsThatDatagram_AndTheNextAreRelayed()
    {
        using var counts = new FaultCounts();
        var options = RelayChain.Options("aes-256-gcm", "udp-guard", new IPEndPoint(IPAddress.Loopback, 0)) with { Forbidden = ForbiddenAddresses.None };
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var server = new ServerUdpRelay(options, new ThrowingResolver(), ProgramScheduler.Instance);
        server.Start(new IPEndPoint(IPAddress.Loopback, 0));
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        for (var i = 1; i <= 3; i++)
        {
            var faultsBefore = counts.Faults("udp.resolve");
            client.SendTo(UdpPackets.Seal(options, ShadowsocksAddress.FromHost("throws.test", echo.EndPoint.Port), "lost"u8), server.LocalEndPoint);
            using (var cancel = new CancellationTokenSource(s_wait))
            {
                while (counts.Faults("udp.resolve") == faultsBefore)
                {
                    await Task.Delay(20, cancel.Token);
                }
            }

            foreach (var target in new[] { ShadowsocksAddress.FromHost("answers.test", echo.EndPoint.Port), ShadowsocksAddress.FromEndPoint(echo.EndPoint) })
            {
                client.SendTo(UdpPackets.Seal(options, target, [(byte)i]), server.LocalEndPoint);
                var reply = await DatagramsFrom.TryReceiveAsync(client, server.LocalEndPoint, s_wait);
                Assert.NotNull(reply); // without the guard the resolve block faulted: nothing came back
                Assert.Equal([(byte)i], UdpPackets.Open(options, reply).Payload);
            }
        }

        Assert.True(counts.Drops("stage fault in udp.resolve") >= 3);
    }

    /// <summary>
    /// Posts a datagram of length 1 (the one <paramref name="block"/>'s work throws on) and one of length 2: the second
    /// comes out, the block is not faulted, the first's buffer went back, and the fault and its drop are counted once.
    /// </summary>
    private static async Task ThrowsOnTheFirst_ServesTheSecondAsync(TransformManyBlock<Datagram, Datagram> block, FaultCounts counts, string stage)
    {
        var (bad, good) = (Datagram.Wrap(Datagram.RentBuffer(), 1, s_client), Datagram.Wrap(Datagram.RentBuffer(), 2, s_client));

        Assert.True(block.Post(bad));
        Assert.True(block.Post(good));

        Assert.Same(good, await block.ReceiveAsync(s_wait));
        Assert.False(block.Completion.IsFaulted);
        Assert.True(bad.Returned);
        Assert.False(good.Returned);
        Assert.Equal(1, counts.Faults(stage));
        Assert.Equal(1, counts.Drops($"stage fault in {stage}"));
        good.Return();
    }

    private static string Stage() => $"udp.test.{Guid.NewGuid():N}";

    private sealed class ThrowingResolver : IDnsResolver
    {
        public ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
            host.StartsWith("throws.", StringComparison.Ordinal)
                ? throw new InvalidOperationException("a resolver bug")
                : ValueTask.FromResult<IPAddress[]>([IPAddress.Loopback]);
    }
}
