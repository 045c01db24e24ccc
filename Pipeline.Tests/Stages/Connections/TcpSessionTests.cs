using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Tests.Stages.Connections;

/// <summary>
/// A session torn down from two sides at once: a relay's shutdown aborting it (<c>AbortAll</c>) while its own task
/// disposes it. The abort that wins the race can find the cancellation already disposed by the other; it must still
/// close the sockets, and throw nothing (a CI run saw the <see cref="ObjectDisposedException"/> escape a relay's dispose).
/// </summary>
public sealed class TcpSessionTests
{
    [Fact]
    public void Abort_AfterTheCancellationWasDisposedByTheOtherSide_ClosesTheSocketWithoutThrowing()
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var session = new TcpSession(client, span: null);
        session.Cancellation.Dispose(); // what Dispose on another thread does between the winner's check and its Cancel

        session.Abort();

        Assert.Throws<ObjectDisposedException>(() => client.Available);
    }

    [Fact]
    public async Task AbortAndDispose_AtTheSameTime_NeverThrow()
    {
        for (var i = 0; i < 2_000; i++)
        {
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var session = new TcpSession(client, span: null);
            using var start = new Barrier(2);
            await Task.WhenAll(
                Task.Run(() => { start.SignalAndWait(); session.Abort(); }),
                Task.Run(() => { start.SignalAndWait(); session.Dispose(); }));
            Assert.Throws<ObjectDisposedException>(() => client.Available);
        }
    }

    [Fact]
    public void Dispose_ClosesAnOutboundSocketSetAfterTheAbort()
    {
        // A relay stopping aborts every session; a connect that finishes just then sets Remote after the abort.
        var session = new TcpSession(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), span: null);
        session.Abort();
        var remote = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        session.Remote = remote;

        session.Dispose();

        Assert.Throws<ObjectDisposedException>(() => remote.Available);
    }

    [Fact]
    public async Task ADisposeWhileAnAbortIsUnderWay_LeavesTheRemotesResetToWaitForDelivery()
    {
        // The client reset, so the remote is to be reset once its peer has what is queued toward it. The session's
        // own task disposes it (on another thread) while the abort is still cancelling: that Dispose must not close
        // the remote at once, which would discard the queue (found in review).
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.ReceiveBufferSize = 8 << 10; // the peer's window, set before connecting
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var clientPeer = await listener.AcceptAsync();
        var remote = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await remote.ConnectAsync(listener.LocalEndPoint!);
        using var remotePeer = await listener.AcceptAsync();
        remote.Blocking = false;
        var queued = 0;
        while (remote.Send(new byte[16 << 10], SocketFlags.None, out var error) is var n && error == SocketError.Success)
        {
            queued += n;
        }

        var session = new TcpSession(client, span: null) { Remote = remote, ResetPatience = TimeSpan.FromSeconds(10) };
        session.MarkBroken(client, BrokenBy.Reset);
        session.Cancellation.Token.Register(() => Task.Run(session.Dispose).Wait());

        session.Abort();

        Assert.True(SocketIo.UnsentBytes(remote) > 0, "the remote was closed at once");
        var received = 0;
        var buffer = new byte[64 << 10];
        var end = SocketError.Success;
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            while (await remotePeer.ReceiveAsync(buffer, SocketFlags.None, cancel.Token) is var n and > 0)
            {
                received += n;
            }
        }
        catch (SocketException e)
        {
            end = e.SocketErrorCode;
        }

        Assert.Equal(queued, received);
        Assert.Equal(SocketError.ConnectionReset, end);
    }

    [Fact]
    public void AFailedSend_EndsTheConnection_WhenTheReadOfThatSideEnds_AndNotBefore()
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var remote = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var session = new TcpSession(client, span: null) { Remote = remote };

        session.SendFailed(remote, SocketError.ConnectionReset);
        session.Fault(); // the direction whose send failed: its chain faults
        Assert.False(session.Cancellation.IsCancellationRequested); // the read of the remote goes on: what it sent before
        Assert.False(session.ReadEnded(client)); // the other side did not break: half-close as usual

        Assert.True(session.ReadEnded(remote)); // its end (the reset the send took): the connection ends, no half-close
        Assert.True(session.Cancellation.IsCancellationRequested);
    }

    [Fact]
    public void AFailedSend_AfterTheReadOfThatSideEnded_EndsTheConnectionAtOnce()
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var remote = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var session = new TcpSession(client, span: null) { Remote = remote };
        Assert.False(session.ReadEnded(remote)); // a FIN: half-closed, nothing more to read from it

        session.SendFailed(remote, SocketError.ConnectionReset);

        Assert.True(session.Cancellation.IsCancellationRequested);
    }

    [Fact]
    public void AFault_WithNoFailedSend_EndsTheConnectionAtOnce()
    {
        using var session = new TcpSession(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), span: null);
        session.Fault();
        Assert.True(session.Cancellation.IsCancellationRequested);
    }

    [Fact]
    public async Task AnIdleTimeoutDuringTheTeardownOfAClientThatFailedAuthentication_LeavesItsCloseAFin()
    {
        // A server's client whose stream failed authentication is kept open for its drain, then closed with a FIN, as
        // a probe with a bad header is. The idle timer can still fire while the data stages end (the runner disposes it
        // after them); that late timeout must not mark the kept client to be reset, or the prober would see a reset
        // after the drain where a bad header gets a FIN.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.ReceiveBufferSize = 8 << 10; // the peers' window, set before connecting
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var (client, clientPeer) = await ConnectAsync(listener, cancel.Token);
        using var _ = clientPeer;
        var (remote, remotePeer) = await ConnectAsync(listener, cancel.Token);
        using var __ = remotePeer;

        // The destination reads nothing: its reset waits for delivery (ResetAfterDelivery), its socket still open.
        remote.Blocking = false;
        for (var i = 0; i < 10_000 && remote.Send(new byte[16 << 10], SocketFlags.None, out var error) > 0 && error == SocketError.Success; i++)
        {
        }

        var session = new TcpSession(client, span: null)
        {
            Remote = remote,
            ResetPatience = TimeSpan.FromSeconds(10),
            HoldsUndelivered = _ => true, // bytes held for a side: a timeout resets both
        };

        session.ClientFailedAuthentication();
        Assert.True(session.ClientLeftToDrain);
        session.IdleTimedOut(); // its timer, firing before the runner disposed it
        session.Dispose(); // the drain is over

        Assert.Equal(SocketError.Success, await EndOfStreamAsync(clientPeer, cancel.Token)); // a FIN, not ConnectionReset
    }

    [Fact]
    public async Task AClientThatFailsAuthenticationAfterTheDestinationReset_IsClosedWithAFin_AfterItsDrain()
    {
        // The destination's reset marks both sides to be reset (a relay passes a reset on). If the client's stream then
        // fails authentication before the teardown, the client is drained as a probe is, and its close after the drain
        // must be the FIN a bad header gets, not the reset that was marked for a connection that relayed.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var (client, clientPeer) = await ConnectAsync(listener, cancel.Token);
        using var _ = clientPeer;
        var (remote, remotePeer) = await ConnectAsync(listener, cancel.Token);
        using var __ = remotePeer;

        var session = new TcpSession(client, span: null) { Remote = remote };
        session.MarkBroken(remote, BrokenBy.Reset); // the destination's reset, read by its pump
        session.ClientFailedAuthentication();
        Assert.True(session.ClientLeftToDrain);
        session.Dispose(); // the drain is over

        Assert.Equal(SocketError.Success, await EndOfStreamAsync(clientPeer, cancel.Token)); // a FIN, not ConnectionReset
    }

    /// <summary>A socket connected to <paramref name="listener"/>, and its accepted peer.</summary>
    private static async Task<(Socket Ours, Socket Peer)> ConnectAsync(Socket listener, CancellationToken cancellationToken)
    {
        var ours = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await ours.ConnectAsync(listener.LocalEndPoint!, cancellationToken);
        return (ours, await listener.AcceptAsync(cancellationToken));
    }

    /// <summary>How <paramref name="peer"/>'s stream ends: <see cref="SocketError.Success"/> for a FIN (nothing read before it), else the reset's error.</summary>
    private static async Task<SocketError> EndOfStreamAsync(Socket peer, CancellationToken cancellationToken)
    {
        try
        {
            Assert.Equal(0, await peer.ReceiveAsync(new byte[64], SocketFlags.None, cancellationToken));
            return SocketError.Success;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode;
        }
    }
}
