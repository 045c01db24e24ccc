using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class SocketAcceptorTests
{
    [Fact]
    public async Task OutOfDescriptors_AcceptsPause_InsteadOfSpinning_AndResumeWhenOneIsFree()
    {
        using var listener = Listening();
        using var client = await ConnectAsync(listener); // waiting in the backlog: the listener stays readable
        var attempts = 0;
        var exhausted = true;
        Socket Accept(Socket l)
        {
            Interlocked.Increment(ref attempts);
            return Volatile.Read(ref exhausted) ? throw new SocketException((int)SocketError.TooManyOpenSockets) : l.Accept();
        }

        var accepted = new BlockingCollection<Socket>();
        using (SocketAcceptor.Accepts(listener, accept: Accept).Subscribe(accepted.Add))
        {
            await Task.Delay(350);
            // A pause of 100 ms after each failure: about four tries. Retrying at once made hundreds of thousands.
            Assert.InRange(Volatile.Read(ref attempts), 1, 8);
            Assert.Empty(accepted);

            Volatile.Write(ref exhausted, false); // a descriptor came free
            Assert.True(accepted.TryTake(out var socket, s_wait), "the waiting connection was not accepted after the pause");
            socket.Dispose();
        }
    }

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(SocketError.TooManyOpenSockets)]
    [InlineData(SocketError.NoBufferSpaceAvailable)]
    public async Task APutOffAccept_IsCounted_WithWhatRanOut(SocketError error)
    {
        // Out of descriptors and out of kernel memory are mended differently (nofile, or memory): the warning over
        // pipeline.accepts_postponed tells them apart by this reason. Other tests' acceptors count too: a match, not a tally.
        var reasons = new ConcurrentBag<string?>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == "pipeline.accepts_postponed")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == TagNames.Reason)
                {
                    reasons.Add(tag.Value as string);
                }
            }
        });
        meters.Start();

        using var listener = Listening();
        using var client = await ConnectAsync(listener);
        using (SocketAcceptor.Accepts(listener, accept: _ => throw new SocketException((int)error)).Subscribe(static _ => { }))
        {
            await Task.Delay(150);
        }

        Assert.Contains(error.ToString(), reasons);
    }

    [Fact]
    public async Task Accepts_EveryConnection_WithNagleOff_ThoseWaitingAndThoseToCome()
    {
        using var listener = Listening();
        var clients = new List<Socket>();
        clients.Add(await ConnectAsync(listener)); // already in the backlog when accepting starts
        var accepted = new BlockingCollection<Socket>();
        using (SocketAcceptor.Accepts(listener).Subscribe(accepted.Add))
        {
            for (var i = 0; i < 4; i++)
            {
                await Task.Delay(20);
                clients.Add(await ConnectAsync(listener)); // after the backlog ran empty: on readiness
            }

            for (var i = 0; i < 5; i++)
            {
                Assert.True(accepted.TryTake(out var socket, s_wait), $"connection {i + 1} of 5 was not accepted");
                Assert.True(socket.NoDelay);
                socket.Dispose();
            }
        }

        clients.ForEach(c => c.Dispose());
    }

    [Fact]
    public async Task WithASlot_AcceptsOnlyWhileOneIsFree()
    {
        using var listener = Listening();
        using var slots = new SemaphoreSlim(1, 1);
        var accepted = new BlockingCollection<Socket>();
        using var subscription = SocketAcceptor.Accepts(listener, slots.WaitAsync).Subscribe(accepted.Add);
        using var first = await ConnectAsync(listener);
        using var second = await ConnectAsync(listener);

        Assert.True(accepted.TryTake(out var one, s_wait));
        Assert.False(accepted.TryTake(out _, TimeSpan.FromMilliseconds(300)), "accepted with no slot free");
        slots.Release();
        Assert.True(accepted.TryTake(out var two, s_wait));
        one.Dispose();
        two.Dispose();
    }

    [Fact]
    public async Task Disposing_StopsAccepting_AndLeavesNoWaitOnTheLoop()
    {
        using var listener = Listening();
        var accepted = new BlockingCollection<Socket>();
        var subscription = SocketAcceptor.Accepts(listener).Subscribe(accepted.Add);
        await Task.Delay(100); // waiting for readiness now
        subscription.Dispose();
        await Task.Delay(100);
        using var late = await ConnectAsync(listener); // the kernel still completes it into the backlog
        Assert.False(accepted.TryTake(out _, TimeSpan.FromMilliseconds(300)));
        Assert.False(SocketReadiness.HasPendingWait(listener), "the listener's readiness wait outlived the subscription");
    }

    [Fact]
    public void Accepts_AreDeliveredOutsideRxsTrampoline()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!); // waiting in the backlog: accepted within Subscribe, on this thread
        bool? scheduleRequired = null; // false inside Rx's CurrentThreadScheduler trampoline (DirectObservableTests)
        Socket? accepted = null;

        using (SocketAcceptor.Accepts(listener).Subscribe(socket =>
        {
            scheduleRequired ??= CurrentThreadScheduler.IsScheduleRequired;
            accepted ??= socket;
        }))
        {
            Assert.NotNull(accepted);
            Assert.True(scheduleRequired, "the accept was delivered inside Rx's CurrentThreadScheduler trampoline");
        }

        accepted.Dispose();
    }

    [Fact]
    public async Task AConnectionGoneBeforeItsSetUp_IsSkipped_AndTheNextOneIsAccepted()
    {
        using var listener = Listening();
        using var first = await ConnectAsync(listener);
        var calls = 0;
        Socket Accept(Socket l)
        {
            var socket = l.Accept();
            if (Interlocked.Increment(ref calls) == 1)
            {
                socket.Dispose(); // the first one is gone before Nagle can be turned off
            }

            return socket;
        }

        var accepted = new BlockingCollection<Socket>();
        Exception? error = null;
        using var subscription = SocketAcceptor.Accepts(listener, accept: Accept).Subscribe(accepted.Add, e => error = e);
        using var second = await ConnectAsync(listener);

        Assert.True(accepted.TryTake(out var socket, s_wait), "the accepts stopped after a connection that was gone");
        Assert.True(socket.NoDelay);
        Assert.Null(error);
        socket.Dispose();
    }

    [Fact]
    public async Task AFailingAccept_EndsInOnError_AndNothingAfterIt()
    {
        using var listener = Listening();
        using var client = await ConnectAsync(listener);
        var failed = new TaskCompletionSource<Exception>();
        var after = 0;
        using var subscription = SocketAcceptor.Accepts(listener, accept: _ => throw new InvalidOperationException("broken accept"))
            .Subscribe(_ => after++, e => failed.SetResult(e), () => after++);

        var error = await failed.Task.WaitAsync(s_wait);
        Assert.Equal("broken accept", error.Message);
        await Task.Delay(100);
        Assert.Equal(0, after);
    }

    private static Socket Listening()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        return listener;
    }

    private static async Task<Socket> ConnectAsync(Socket listener)
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!).WaitAsync(s_wait);
        return client;
    }
}
