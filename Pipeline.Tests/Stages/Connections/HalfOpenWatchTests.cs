using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Connections;

/// <summary>
/// The sweep of half-closed connections, in manual time: a reset on a watched socket ends its connection within one
/// period; a healthy one is left alone; and with nothing left to watch no timer is pending (an idle process sleeps).
/// </summary>
public sealed class HalfOpenWatchTests
{
    [Fact]
    public async Task AResetOnAWatchedSocket_EndsItsConnectionAtTheNextSweep_AndTheSweepsStopWhenNoneIsLeft()
    {
        var time = new ManualTimeProvider();
        var watch = new HalfOpenWatch(time);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var (resetSide, resetPeer) = await PairAsync(listener);
        var (healthySide, healthyPeer) = await PairAsync(listener);
        using var reset = new TcpSession(resetSide, span: null);
        using var healthy = new TcpSession(healthySide, span: null);
        using var _ = healthyPeer;

        watch.Watch(reset, resetSide);
        watch.Watch(healthy, healthySide);
        Assert.Equal(1, time.Pending);
        resetPeer.LingerState = new LingerOption(true, 0);
        resetPeer.Close(); // RST
        Assert.True(resetSide.Poll(1_000_000, SelectMode.SelectRead)); // the reset has arrived (readable: the error)

        time.Advance(HalfOpenWatch.Period);

        Assert.Throws<ObjectDisposedException>(() => resetSide.Available); // that connection was torn down
        Assert.Equal(0, healthySide.Available); // the healthy one is open
        Assert.Equal(1, watch.Count);
        Assert.Equal(1, time.Pending); // still one to watch

        watch.Forget(healthy);
        time.Advance(HalfOpenWatch.Period);
        Assert.Equal(0, time.Pending);
    }

    private static async Task<(Socket Side, Socket Peer)> PairAsync(Socket listener)
    {
        var side = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await side.ConnectAsync(listener.LocalEndPoint!);
        return (side, await listener.AcceptAsync());
    }
}
