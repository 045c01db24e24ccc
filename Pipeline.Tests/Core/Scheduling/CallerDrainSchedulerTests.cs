using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Core.Scheduling;

public sealed class CallerDrainSchedulerTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public void ATaskQueuedInAScope_RunsOnTheCallersThread_AfterTheCallHasReturned()
    {
        var caller = Environment.CurrentManagedThreadId;
        var returned = false;
        var ranAfterReturn = false;
        var ranOn = 0;

        var task = CallerDrainScheduler.Run(
            _ =>
            {
                var started = Task.Factory.StartNew(
                    () =>
                    {
                        ranOn = Environment.CurrentManagedThreadId;
                        ranAfterReturn = Volatile.Read(ref returned);
                    },
                    CancellationToken.None,
                    TaskCreationOptions.None,
                    CallerDrainScheduler.Instance);
                Assert.False(started.IsCompleted); // queued, not run inside the call
                returned = true;
                return started;
            },
            0);

        Assert.True(task.IsCompletedSuccessfully, "the scope ran what it queued before Run returned");
        Assert.Equal(caller, ranOn);
        Assert.True(ranAfterReturn);
    }

    [Fact]
    public void WhatTheScopesTasksQueue_RunsInTheSameScope()
    {
        var order = new List<int>();
        CallerDrainScheduler.Run(
            _ =>
            {
                Start(() =>
                {
                    order.Add(1);
                    Start(() => order.Add(3));
                });
                Start(() => order.Add(2));
                return 0;
            },
            0);

        Assert.Equal([1, 2, 3], order);
    }

    [Fact]
    public void ANestedScope_LeavesItsTasksToTheOuterOne()
    {
        var order = new List<string>();
        CallerDrainScheduler.Run(
            _ =>
            {
                CallerDrainScheduler.Run(
                    _ =>
                    {
                        Start(() => order.Add("inner task"));
                        return 0;
                    },
                    0);
                order.Add("inner scope returned");
                return 0;
            },
            0);

        Assert.Equal(["inner scope returned", "inner task"], order);
    }

    [Fact]
    public void ACallThatThrows_StillRunsWhatItQueued()
    {
        var ran = false;
        Assert.Throws<InvalidOperationException>(() => CallerDrainScheduler.Run<int, int>(
            _ =>
            {
                Start(() => ran = true);
                throw new InvalidOperationException("the call failed");
            },
            0));

        Assert.True(ran);
        Assert.False(CallerDrainScheduler.InScope);
    }

    [Fact]
    public async Task OutsideAScope_TasksGoToThePool()
    {
        var onPool = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() => Start(() => onPool.TrySetResult(Thread.CurrentThread.IsThreadPoolThread)));
        thread.Start();
        thread.Join();

        Assert.True(await onPool.Task.WaitAsync(s_timeout));
    }

    [Fact]
    public void AChunkPostedToADataflowChainInAScope_IsThroughTheChainWhenRunReturns()
    {
        var options = new ExecutionDataflowBlockOptions { BoundedCapacity = 1, MaxMessagesPerTask = 1, TaskScheduler = CallerDrainScheduler.Instance };
        var caller = Environment.CurrentManagedThreadId;
        var seen = new List<(int Value, int Thread)>();
        var twice = new TransformBlock<int, int>(x => x * 2, options);
        var sink = new ActionBlock<int>(x => seen.Add((x, Environment.CurrentManagedThreadId)), options);
        twice.LinkTo(sink, new DataflowLinkOptions { PropagateCompletion = true });

        Assert.True(CallerDrainScheduler.Run(static block => block.Post(21), twice));

        Assert.Equal([(42, caller)], seen);
        Assert.Equal(0, twice.InputCount);
        Assert.Equal(0, sink.InputCount);
    }

    private static void Start(Action action) =>
        Task.Factory.StartNew(action, CancellationToken.None, TaskCreationOptions.None, CallerDrainScheduler.Instance);
}
