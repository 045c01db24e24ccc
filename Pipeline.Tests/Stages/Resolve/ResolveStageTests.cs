using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Resolve;
using Shadowsocks.Pipeline.Tests.Core.Dns;

namespace Shadowsocks.Pipeline.Tests.Stages.Resolve;

/// <summary>
/// The server's TCP resolve stage: <c>pipeline.resolve.max_parallelism</c> bounds the lookups in flight, and a lookup
/// that takes long (a name whose servers do not answer: up to the resolver's total timeout) holds only its own
/// connection. A connection to an address, or to a name the resolver knows at once (the cache, the hosts file), needs no
/// lookup and goes on at once.
/// </summary>
public sealed class ResolveStageTests
{
    private const int SlowNames = 8;

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // a name the resolver knows at once (the cache, the hosts file)
    public async Task LookupsThatHang_DoNotHoldBackAConnectionToAnAddress_AndStayWithinTheStagesParallelism(bool toAKnownName)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var resolver = new GatedResolver { Known = "cached.test" };
        var block = ResolveStage.Create(new StageOptions(2, 64), resolver);
        var sessions = new List<TcpSession>();
        try
        {
            for (var i = 0; i < SlowNames; i++)
            {
                sessions.Add(Session(ShadowsocksAddress.FromHost($"slow{i}.test", 80)));
                Assert.True(block.Post(sessions[^1]));
            }

            while (resolver.Calls < 2)
            {
                await Task.Delay(10, cancel.Token);
            }

            var direct = Session(toAKnownName ? ShadowsocksAddress.FromHost("cached.test", 80) : ShadowsocksAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 80)));
            sessions.Add(direct);
            Assert.True(block.Post(direct));
            TcpSession? first = null;
            try
            {
                first = await block.ReceiveAsync(TimeSpan.FromSeconds(3), cancel.Token);
            }
            catch (TimeoutException)
            {
                // Asserted below, after the held lookups are let go.
            }

            var maxInFlightWhileHeld = resolver.MaxInFlight;
            resolver.Open();
            var resolved = new List<TcpSession>();
            while (resolved.Count < (first is null ? SlowNames + 1 : SlowNames))
            {
                resolved.Add(await block.ReceiveAsync(cancel.Token));
            }

            Assert.True(ReferenceEquals(direct, first), "a connection to an address or a known name waited behind other connections' lookups");
            Assert.Equal([IPAddress.Loopback], direct.ResolvedAddresses);
            Assert.Equal(2, maxInFlightWhileHeld);
            Assert.Equal(2, resolver.MaxInFlight);
            Assert.Equal(SlowNames, resolver.Calls);
            Assert.All(resolved, s => Assert.Equal([IPAddress.Loopback], s.ResolvedAddresses));
        }
        finally
        {
            resolver.Open();
            sessions.ForEach(s => s.Dispose());
        }
    }

    private static TcpSession Session(ShadowsocksAddress destination) =>
        new(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), span: null) { Destination = destination };
}
