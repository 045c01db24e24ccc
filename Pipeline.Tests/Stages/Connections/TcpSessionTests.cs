using System.Net.Sockets;
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
}
