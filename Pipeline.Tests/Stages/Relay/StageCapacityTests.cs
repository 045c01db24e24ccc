using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A shared stage at its bounded capacity makes the connections before it wait. A block at capacity postpones what it
/// is offered, and Dataflow then offers the message to the source's next link: each link's predicate must name only
/// the sessions it is for, or a healthy connection falls through to another way (the reject stage, which closed it;
/// or, on a local with an ACL, the way to the server, where a direct connection went out unencrypted).
/// </summary>
public sealed class StageCapacityTests
{
    private const int Connections = 8;

    [Fact]
    public async Task Server_ResolveAtCapacity_TheConnectionsBehindItWait_AndAreServed()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var run = Guid.NewGuid().ToString("N")[..8];
        var resolver = new GatedResolver();
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", resolver: resolver, tune: static o => o with
        {
            Forbidden = ForbiddenAddresses.None,
            Pipeline = PipelineOptions.Default with { Resolve = new StageOptions(1, 2) }, // one lookup at a time, two held
        });
        var (server, local) = (chain.Server, chain.Local);

        var echoes = Transfer.EchoAtOnceThroughSocks5(local.LocalEndPoint, i => $"h{i}.{run}.test", destination.EndPoint.Port, Connections, 1024, cancel.Token);

        // Every connection reaches the server and its header is read while the first lookup is held: the stage is
        // full, and the rest wait behind it.
        // The first lookup starts once its header is read, which on a loaded machine can come after the last accept
        // by more than a fixed wait: waited for; then a moment to see that no second one starts.
        while (server.ActiveSessions < Connections || resolver.Calls < 1)
        {
            await Task.Delay(20, cancel.Token);
        }

        await Task.Delay(500, cancel.Token);
        Assert.Equal(1, resolver.Calls);
        resolver.Open();

        await Task.WhenAll(echoes); // each connection echoes: none was closed for the stage being full
        Assert.Equal(Connections, resolver.Calls);
    }

    [Fact]
    public async Task Local_DirectConnectAtCapacity_ADirectConnectionWaits_AndNeverGoesToTheServer()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        // The "server": a listener that only records whether anyone connected.
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        server.Listen(16);

        // A destination whose connects hang.
        using var stalled = new StalledListener();
        await using var destination = new EchoDestination();
        Assert.True(AccessControlList.TryParse("[proxy_all]\n[bypass_list]\n127.0.0.0/8\n", out var acl, out var error), error);
        var options = RelayChain.Options("aes-256-gcm", "capacity", new IPEndPoint(IPAddress.Loopback, 0), server.LocalEndPoint) with
        {
            Acl = acl,
            Pipeline = PipelineOptions.Default with { Connect = new StageOptions(1, 1) }, // one connect at a time, each way
            ConnectTimeout = TimeSpan.FromSeconds(2),
        };
        await using var local = new LocalTcpRelay(options, ProgramScheduler.Instance, TimeProvider.System, routeNames: new SystemDnsResolver());
        local.Start();

        // The first direct connection holds the direct connect stage until its connect times out.
        var first = Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", stalled.EndPoint.Port, cancel.Token);
        await Task.Delay(300, cancel.Token);

        // The second, direct as well, waits for the stage; it is served directly once the first gives up.
        var (second, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using (second)
        {
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(second, 1024, cancel.Token);
        }

        var (firstSocket, firstReply) = await first;
        firstSocket.Dispose();
        Assert.NotEqual(0, firstReply);
        Assert.False(server.Poll(0, SelectMode.SelectRead), "a direct connection went to the Shadowsocks server");
    }

    /// <summary>Answers every name with loopback once opened; until then each lookup waits.</summary>
    private sealed class GatedResolver : IDnsResolver
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public void Open() => _open.TrySetResult();

        public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            await _open.Task.WaitAsync(cancellationToken);
            return [IPAddress.Loopback];
        }
    }
}
