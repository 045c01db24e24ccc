using System.Net;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>At the connection limit a new client waits (in the listen backlog) and is served as soon as a slot frees.</summary>
public sealed class ConnectionLimitTests
{
    [Fact]
    public async Task AtTheLimit_NewConnectionsWait_ThenAreServed()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        var loopback = new IPEndPoint(IPAddress.Loopback, 0);
        await using var server = new ServerTcpRelay(RelayChain.Options("aes-256-gcm", "limit", loopback), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var localOptions = RelayChain.Options("aes-256-gcm", "limit", loopback, server.LocalEndPoint) with { MaxConnections = 3 };
        await using var local = new LocalTcpRelay(localOptions, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();

        var held = new List<System.Net.Sockets.Socket>();
        for (var i = 0; i < 3; i++)
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            Assert.Equal(0, reply);
            held.Add(socket);
        }

        var fourth = Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        await Task.WhenAny(fourth, Task.Delay(700, cancel.Token));
        Assert.False(fourth.IsCompleted, "the fourth connection was served while three were open");
        Assert.Equal(3, local.ActiveSessions);

        held[0].Dispose();
        var (late, lateReply) = await fourth.WaitAsync(TimeSpan.FromSeconds(10), cancel.Token);
        using var _ = late;
        Assert.Equal(0, lateReply);
        await Transfer.EchoRoundTripAsync(late, 64 * 1024, cancel.Token);
        held.Skip(1).ToList().ForEach(s => s.Dispose());
    }
}
