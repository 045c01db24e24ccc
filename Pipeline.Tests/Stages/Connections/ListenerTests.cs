using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Tests.Stages.Connections;

public sealed class ListenerTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task WhereTheClientSpeaksFirst_AConnectionIsHandedOverWithItsFirstBytes_ASilentOneIsHeldBack()
    {
        using var listener = Listener.Open(new IPEndPoint(IPAddress.Loopback, 0), clientSpeaksFirst: true);
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(listener.LocalEndPoint!).WaitAsync(s_wait);
        Assert.False(listener.Poll(300_000, SelectMode.SelectRead), "a connection that sent nothing was offered for accept");

        using var speaking = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await speaking.ConnectAsync(listener.LocalEndPoint!).WaitAsync(s_wait);
        speaking.Send([5, 1, 0]); // a SOCKS5 greeting
        var accepted = await listener.AcceptAsync().WaitAsync(s_wait);
        if (!Equals(accepted.RemoteEndPoint, speaking.LocalEndPoint))
        {
            accepted.Dispose(); // the silent one, handed over meanwhile after its hold (about 1 s)
            accepted = await listener.AcceptAsync().WaitAsync(s_wait);
        }

        using var _ = accepted;
        Assert.Equal(3, accepted.Available); // the greeting is already there to read
        Assert.Equal(speaking.LocalEndPoint, accepted.RemoteEndPoint);
    }

    [Fact]
    public async Task WhereTheClientSpeaksFirst_ASilentConnectionIsStillHandedOver_AfterOneSynAckRetransmission()
    {
        // Its handshake timeout starts only when it is handed over: held three retransmissions (about 7 s), a silent
        // SOCKS5 client was closed that much after its timeout. Now one (the kernel's first after about 1 s).
        using var listener = Listener.Open(new IPEndPoint(IPAddress.Loopback, 0), clientSpeaksFirst: true);
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(listener.LocalEndPoint!).WaitAsync(s_wait);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var accepted = await listener.AcceptAsync().WaitAsync(s_wait);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"handed over after {clock.Elapsed}");
        Assert.Equal(silent.LocalEndPoint, accepted.RemoteEndPoint);
    }

    [Fact]
    public async Task Otherwise_AConnectionIsHandedOverAtOnce()
    {
        using var listener = Listener.Open(new IPEndPoint(IPAddress.Loopback, 0));
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(listener.LocalEndPoint!).WaitAsync(s_wait);
        using var accepted = await listener.AcceptAsync().WaitAsync(s_wait);
        Assert.Equal(silent.LocalEndPoint, accepted.RemoteEndPoint);
    }

    [Fact]
    public void WithFastOpen_TheListenerTakesDataInTheSyn_OtherwiseNot()
    {
        using var fastOpen = Listener.Open(new IPEndPoint(IPAddress.Loopback, 0), acceptFastOpen: true);
        using var plain = Listener.Open(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.Equal(256, FastOpenQueue(fastOpen));
        Assert.Equal(0, FastOpenQueue(plain));
    }

    /// <summary><c>TCP_FASTOPEN</c>: the queue of connections whose SYN brought data (0: off).</summary>
    private static int FastOpenQueue(Socket listener)
    {
        var value = new byte[4];
        listener.GetRawSocketOption(6, 23, value);
        return BitConverter.ToInt32(value);
    }

    [Fact]
    public void WithReusePort_TwoListenersShareAPort_WithoutItTheSecondIsRefused()
    {
        using var first = Listener.Open(new IPEndPoint(IPAddress.Loopback, 0), reusePort: true);
        var port = ((IPEndPoint)first.LocalEndPoint!).Port;
        using var second = Listener.Open(new IPEndPoint(IPAddress.Loopback, port), reusePort: true);
        Assert.Equal(port, ((IPEndPoint)second.LocalEndPoint!).Port);

        var refused = Assert.Throws<ListenException>(() => Listener.Open(new IPEndPoint(IPAddress.Loopback, port)).Dispose());
        Assert.Equal(SocketError.AddressAlreadyInUse, refused.SocketErrorCode);
        Assert.Equal($"127.0.0.1:{port}", refused.Where); // the address that failed, for the line at start
    }
}
