using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class EventLoopTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public void Readable_FiresOnTheLoopThread_AgainWhileDataIsLeft_AndNotAfterDisposal()
    {
        using var loop = new EventLoop("test loop");
        using var receiver = Bound();
        using var sender = Bound();
        var notifications = new BlockingCollection<bool>();
        var subscription = loop.Readable(receiver).Subscribe(_ =>
        {
            notifications.Add(loop.IsLoopThread);
            var buffer = new byte[16];
            receiver.Receive(buffer); // one datagram per notification: the second must come back as another one
        });

        sender.SendTo([1], receiver.LocalEndPoint!);
        sender.SendTo([2], receiver.LocalEndPoint!);
        Assert.True(notifications.TryTake(out var onLoop, s_wait));
        Assert.True(onLoop);
        Assert.True(notifications.TryTake(out _, s_wait), "level-triggered: the datagram left unread is reported again");

        subscription.Dispose();
        sender.SendTo([3], receiver.LocalEndPoint!);
        Assert.False(notifications.TryTake(out _, TimeSpan.FromMilliseconds(300)));
        Assert.Equal(1, receiver.Available > 0 ? 1 : 0);
    }

    [Fact]
    public void Readable_OnAClosedSocket_Throws_AndKeepsNoHandler()
    {
        // A UDP NAT entry can expire (its socket closed) just as its receiver watches the socket again.
        using var loop = new EventLoop("test loop");
        var closed = Bound();
        closed.Dispose();
        for (var i = 0; i < 10; i++)
        {
            Assert.Throws<ObjectDisposedException>(() => loop.Readable(closed).Subscribe(_ => { }));
        }

        Assert.Equal(0, loop.HandlerCount);
    }

    [Fact]
    public async Task AWaitOnAClosedSocket_Throws_AndKeepsNoHandler()
    {
        using var loop = new EventLoop("test loop");
        var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        var interest = new SocketInterest(loop, closed);
        closed.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => interest.WaitAsync(write: false, CancellationToken.None));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => interest.WaitAsync(write: true, CancellationToken.None));
        Assert.Equal(0, loop.HandlerCount);
    }

    [Fact]
    public async Task BlocksOnTheScheduler_RunOnTheLoopThread_WhoeverPostsToThem()
    {
        using var loop = new EventLoop("test loop");
        var threads = new ConcurrentBag<bool>();
        var block = new ActionBlock<int>(_ => threads.Add(loop.IsLoopThread), new ExecutionDataflowBlockOptions { TaskScheduler = loop.Scheduler, MaxDegreeOfParallelism = 4 });
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 250; i++)
            {
                block.Post(i);
            }
        })));
        block.Complete();
        await block.Completion.WaitAsync(s_wait);
        Assert.Equal(1000, threads.Count);
        Assert.All(threads, Assert.True);
    }

    [Fact]
    public void AFailingHandler_LeavesTheLoopServingTheOthers_AndIsCounted()
    {
        long counted = 0;
        using var meters = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "pipeline.loop.handler_failures")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        meters.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref counted, value));
        meters.Start();
        using var loop = new EventLoop("test loop");
        using var bad = Bound();
        using var good = Bound();
        using var sender = Bound();
        var failures = 0;
        using var badSubscription = loop.Readable(bad).Subscribe(_ =>
        {
            bad.Receive(new byte[16]);
            Interlocked.Increment(ref failures);
            throw new InvalidOperationException("handler bug");
        });
        var received = new BlockingCollection<byte>();
        using var goodSubscription = loop.Readable(good).Subscribe(_ =>
        {
            var buffer = new byte[16];
            good.Receive(buffer);
            received.Add(buffer[0]);
        });

        for (byte i = 0; i < 5; i++)
        {
            sender.SendTo([i], bad.LocalEndPoint!);
            sender.SendTo([i], good.LocalEndPoint!);
            Assert.True(received.TryTake(out var value, s_wait));
            Assert.Equal(i, value);
        }

        Assert.True(Volatile.Read(ref failures) >= 1);
        Assert.True(Interlocked.Read(ref counted) >= 1);
    }

    [Fact]
    public async Task Dispose_StopsTheThread_AndASocketClosedWhileSubscribedIsHarmless()
    {
        var loop = new EventLoop("test loop");
        var socket = Bound();
        var subscription = loop.Readable(socket).Subscribe(_ => { });
        socket.Dispose();
        subscription.Dispose();
        var stopped = Task.Run(loop.Dispose);
        await stopped.WaitAsync(s_wait);
        loop.Dispose(); // twice is fine
    }

    /// <summary>
    /// A task queued after the loop stopped (a DNS answer's continuation reaching a disposed UDP relay's resolve stage)
    /// wakes nobody: the loop's eventfd is closed, and its descriptor number may belong to another file by then (a
    /// socket of a TCP connection still draining at shutdown). Each attempt disposes a loop, takes the freed descriptor
    /// numbers with eventfds of its own, queues a task from outside the loop and looks for the 8-byte wake-up in them.
    /// </summary>
    [Fact]
    public unsafe void ATaskQueuedAfterDispose_WritesToNoDescriptorThatReusedTheWakeOnes()
    {
        const int Attempts = 20;
        const int Reusers = 32;
        var written = 0;
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            var loop = new EventLoop("test loop");
            loop.Dispose();
            var reusers = new int[Reusers];
            for (var i = 0; i < Reusers; i++)
            {
                reusers[i] = Epoll.EventFd(0, Epoll.CloseOnExec | Epoll.NonBlocking);
                Assert.True(reusers[i] >= 0);
            }

            try
            {
                var late = Task.Factory.StartNew(static () => { }, CancellationToken.None, TaskCreationOptions.None, loop.Scheduler);
                Assert.False(late.IsCompleted);
                foreach (var fd in reusers)
                {
                    ulong value;
                    if (Epoll.Read(fd, &value, sizeof(ulong)) == sizeof(ulong))
                    {
                        written++;
                    }
                }
            }
            finally
            {
                foreach (var fd in reusers)
                {
                    Epoll.Close(fd);
                }
            }
        }

        Assert.Equal(0, written);
    }

    private static Socket Bound()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }
}
