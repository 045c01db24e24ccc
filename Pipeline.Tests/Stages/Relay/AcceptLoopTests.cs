using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>The listener's hand-over of accepted connections to the first stage.</summary>
public sealed class AcceptLoopTests
{
    [Fact]
    public async Task AHandOverThatThrows_ClosesThatConnection_AndAcceptingGoesOn()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stage = new ThrowsOnceStage();

        // One slot: if the failed hand-over kept its slot, the second client would wait in the backlog for ever.
        var options = RelayChain.Options("aes-256-gcm", "accept", new IPEndPoint(IPAddress.Loopback, 0)) with { MaxConnections = 1 };
        await using var accepts = new AcceptLoop(options, "local", stage, TimeProvider.System);

        using var first = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await first.ConnectAsync(accepts.LocalEndPoint, cancel.Token);
        var closed = await first.ReceiveAsync(new byte[1], SocketFlags.None, cancel.Token);
        Assert.Equal(0, closed);

        using var second = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await second.ConnectAsync(accepts.LocalEndPoint, cancel.Token);
        using var session = await stage.Sessions.ReadAsync(cancel.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(10), cancel.Token);
        Assert.Equal(((IPEndPoint)second.LocalEndPoint!).Port, ((IPEndPoint)session.Client.RemoteEndPoint!).Port);
        Assert.Equal(1, accepts.ActiveSessions);
    }

    /// <summary>A first stage whose first offer throws; later sessions are kept for the test to read.</summary>
    private sealed class ThrowsOnceStage : ITargetBlock<TcpSession>
    {
        private readonly Channel<TcpSession> _sessions = Channel.CreateUnbounded<TcpSession>();
        private readonly TaskCompletionSource _completion = new();
        private int _offers;

        public ChannelReader<TcpSession> Sessions => _sessions.Reader;

        public Task Completion => _completion.Task;

        public DataflowMessageStatus OfferMessage(
            DataflowMessageHeader messageHeader, TcpSession messageValue, ISourceBlock<TcpSession>? source, bool consumeToAccept)
        {
            if (Interlocked.Increment(ref _offers) == 1)
            {
                throw new InvalidOperationException("a fault in the first stage");
            }

            _sessions.Writer.TryWrite(messageValue);
            return DataflowMessageStatus.Accepted;
        }

        public void Complete() => _completion.TrySetResult();

        public void Fault(Exception exception) => _completion.TrySetException(exception);
    }
}
