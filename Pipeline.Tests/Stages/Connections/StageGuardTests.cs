using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Connections;

/// <summary>
/// A shared stage whose work throws something unforeseen fails that connection only and serves the next: a Dataflow
/// block whose delegate throws is faulted for good, which for a shared stage meant no connection got through again.
/// </summary>
public sealed class StageGuardTests
{
    [Fact]
    public async Task AnUnexpectedThrow_SynchronousOrLater_FailsThatSessionWithWhatWasThrown()
    {
        using var first = new TcpSession(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), span: null);
        using var second = new TcpSession(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), span: null);

        var thrownAtOnce = await StageGuard.Isolate("test", _ => throw new InvalidOperationException("at once"))(first);
        var thrownLater = await StageGuard.Isolate("test", async s =>
        {
            await Task.Yield();
            throw new InvalidOperationException("later");
        })(second);

        Assert.Same(first, thrownAtOnce);
        Assert.Equal("test: InvalidOperationException: at once", first.FailureReason);
        Assert.Same(second, thrownLater);
        Assert.Equal("test: InvalidOperationException: later", second.FailureReason);
    }

    [Fact]
    public async Task Server_AResolverThatThrows_CostsThatConnection_AndTheNextIsServed()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", resolver: new ThrowingResolver(), tune: static o => o with { Forbidden = ForbiddenAddresses.None });
        var local = chain.Local;

        for (var i = 0; i < 3; i++)
        {
            // The lookup throws: the server closes this connection (its local then closes the client's).
            var (failed, _) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "throws.test", destination.EndPoint.Port, cancel.Token);
            using (failed)
            {
                await failed.SendAsync(new byte[16], SocketFlags.None, cancel.Token);
                Assert.Empty(await Socks5TestClient.ReadUntilClosedAsync(failed, cancel.Token));
            }

            // And the stage goes on: the next connection is resolved and relayed.
            var (served, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "answers.test", destination.EndPoint.Port, cancel.Token);
            using (served)
            {
                Assert.Equal(0, reply);
                await Transfer.EchoRoundTripAsync(served, 4096, cancel.Token);
            }
        }
    }

    private sealed class ThrowingResolver : IDnsResolver
    {
        public ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
            host.StartsWith("throws.", StringComparison.Ordinal)
                ? throw new InvalidOperationException("a resolver bug")
                : ValueTask.FromResult<IPAddress[]>([IPAddress.Loopback]);
    }
}
