using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Scheduling;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// The chunks one direction of one connection has handed to its chains and not yet seen sent, counted here and in
/// the relay's <see cref="ReadBudget"/>. The pump counts each chunk in (<see cref="Add"/>), the chain's last block
/// counts it out once sent or dropped (<see cref="Done"/>), and a pump over budget waits for its own chain to empty
/// (<see cref="EmptiedAsync"/>). <see cref="Close"/> gives back what a torn-down connection's chains never finished.
/// </summary>
internal sealed class ChunksInFlight(ReadBudget budget)
{
    /// <summary>The count once closed: far enough below zero that late <see cref="Done"/> calls never reach it back.</summary>
    private const int Closed = int.MinValue / 2;

    private int _count;

    private TaskCompletionSource? _emptied;

    public ReadBudget Budget { get; } = budget;

    /// <summary>Chunks in flight (negative once closed).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Whether the pump may read its next chunk now: its chain is empty, or the relay has room for one more.</summary>
    public bool MayReadMore => Count <= 0 || Budget.HasRoomForMore;

    /// <summary>A chunk handed to the chain (before the hand-off: the chain may send it before the call returns).</summary>
    public void Add()
    {
        Interlocked.Increment(ref _count);
        Budget.Handed(1);
    }

    /// <summary>
    /// Hands <paramref name="chunk"/> to <paramref name="target"/> without waiting (data a handshake stage already
    /// holds, into a fresh chain), counted in; one the chain refuses goes back to the pool and out of the count.
    /// The chain takes it on this thread (<see cref="CallerDrainScheduler"/>): it is one small chunk.
    /// </summary>
    public void Post(ITargetBlock<Chunk> target, Chunk chunk)
    {
        Add();
        if (!CallerDrainScheduler.Run(static s => s.target.Post(s.chunk), (target, chunk)))
        {
            chunk.Return();
            Done();
        }
    }

    /// <summary>A chunk sent, or one the chain refused or dropped.</summary>
    public void Done()
    {
        var left = Interlocked.Decrement(ref _count);
        if (left < 0)
        {
            return; // closed: Close gave it back already
        }

        Budget.Finished(1);
        if (left == 0)
        {
            Interlocked.Exchange(ref _emptied, null)?.TrySetResult();
        }
    }

    /// <summary>Completes once every chunk handed in has been sent (at once when none is in flight).</summary>
    public Task EmptiedAsync(CancellationToken cancellationToken)
    {
        if (Count <= 0)
        {
            return Task.CompletedTask;
        }

        // Continuations asynchronously: the pump must not run inside the chain's last block.
        var emptied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // A full fence (not a volatile write), so that the count is read again only after the waiter is visible to
        // Done: otherwise the read could pass the write, and a Done in between would find no waiter while this found
        // the chunk still out, and the pump would wait for good.
        Interlocked.Exchange(ref _emptied, emptied);
        if (Count <= 0)
        {
            // The last chunk went out between the check and the write, and its Done found no waiter.
            Interlocked.CompareExchange(ref _emptied, null, emptied);
            return Task.CompletedTask;
        }

        return emptied.Task.WaitAsync(cancellationToken);
    }

    /// <summary>The pump is done: chunks its chains never finished (a torn-down connection) leave the relay's count.</summary>
    public void Close()
    {
        var left = Interlocked.Exchange(ref _count, Closed);
        if (left > 0)
        {
            Budget.Finished(left);
        }
    }
}
