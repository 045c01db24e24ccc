using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Tests.Core.Dns;

namespace Shadowsocks.Pipeline.Tests.Stages.Resolve;

/// <summary>
/// The scene of the resolve and route stages' tests: <see cref="SlowNames"/> connections to names whose lookups the
/// resolver holds, then one quick connection that needs no lookup; what came out of the stage while they were held,
/// and everything once they are let go.
/// </summary>
internal static class HeldLookups
{
    public const int SlowNames = 8;

    /// <summary>
    /// Runs the scene on <paramref name="block"/> (at least 2 lookup slots). <c>First</c> is what came out within 10 s
    /// while the lookups were held (null: nothing); <c>Others</c> every other connection, once the resolver opened.
    /// </summary>
    public static async Task<(TcpSession Quick, TcpSession? First, int MaxInFlightWhileHeld, List<TcpSession> Others)> RunAsync(
        TransformBlock<TcpSession, TcpSession> block, GatedResolver resolver, ShadowsocksAddress quickDestination, CancellationToken cancellationToken)
    {
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
                await Task.Delay(10, cancellationToken);
            }

            var quick = Session(quickDestination);
            sessions.Add(quick);
            Assert.True(block.Post(quick));
            TcpSession? first = null;
            try
            {
                // Generous: the held lookups never end by themselves, so a longer wait tells the same, and a loaded
                // machine (a thread pool short of threads) can take seconds to run the stage's continuation.
                first = await block.ReceiveAsync(TimeSpan.FromSeconds(10), cancellationToken);
            }
            catch (TimeoutException)
            {
                // The caller asserts on it, after the held lookups are let go.
            }

            var maxInFlightWhileHeld = resolver.MaxInFlight;
            resolver.Open();
            var others = new List<TcpSession>();
            for (var left = first is null ? SlowNames + 1 : SlowNames; left > 0; left--)
            {
                var next = await block.ReceiveAsync(cancellationToken);
                if (!ReferenceEquals(next, quick))
                {
                    others.Add(next);
                }
            }

            return (quick, first, maxInFlightWhileHeld, others);
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
