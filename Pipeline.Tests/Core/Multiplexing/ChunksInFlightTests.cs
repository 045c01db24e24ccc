using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class ChunksInFlightTests
{
    [Fact]
    public void AddAndDone_CountInTheDirectionAndInTheRelaysBudget()
    {
        var budget = new ReadBudget(ReadBudget.DefaultBytes);
        var up = new ChunksInFlight(budget);
        var down = new ChunksInFlight(budget);
        up.Add();
        up.Add();
        down.Add();
        Assert.Equal(2, up.Count);
        Assert.Equal(3, budget.InFlight);

        up.Done();
        down.Done();
        Assert.Equal(1, up.Count);
        Assert.Equal(0, down.Count);
        Assert.Equal(1, budget.InFlight);
    }

    [Fact]
    public void MayReadMore_WhileTheRelayHasRoom_OrWhenItsOwnChainIsEmpty()
    {
        // Room for two largest buffers in the whole relay (no pump busy: chunks count at the largest size).
        var budget = new ReadBudget(2 * ReadBudget.Largest);
        var first = new ChunksInFlight(budget);
        var second = new ChunksInFlight(budget);
        Assert.True(first.MayReadMore);

        first.Add();
        Assert.True(budget.HasRoomForMore);
        Assert.True(first.MayReadMore);

        first.Add();
        Assert.False(budget.HasRoomForMore);
        Assert.False(first.MayReadMore); // two of its own out, none fits: it waits for its chain
        Assert.True(second.MayReadMore); // nothing of its own out: it may always read one, never waits on others

        first.Done();
        Assert.True(first.MayReadMore);
    }

    [Fact]
    public async Task EmptiedAsync_CompletesWhenTheLastChunkIsDone()
    {
        var inFlight = new ChunksInFlight(new ReadBudget(ReadBudget.DefaultBytes));
        Assert.True(inFlight.EmptiedAsync(CancellationToken.None).IsCompleted);

        inFlight.Add();
        inFlight.Add();
        var emptied = inFlight.EmptiedAsync(CancellationToken.None);
        inFlight.Done();
        Assert.False(emptied.IsCompleted);

        inFlight.Done();
        await emptied.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task EmptiedAsync_NeverMissesTheLastDone_WhenItRacesTheWait()
    {
        // The chain's last block counts the chunk out on another thread while the pump starts to wait: a lost
        // wake-up would leave the pump waiting for good (here: the 10 s timeout).
        var budget = new ReadBudget(ReadBudget.DefaultBytes);
        var inFlight = new ChunksInFlight(budget);
        for (var i = 0; i < 20_000; i++)
        {
            inFlight.Add();
            var done = Task.Run(inFlight.Done);
            await inFlight.EmptiedAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            await done;
        }

        Assert.Equal(0, inFlight.Count);
        Assert.Equal(0, budget.InFlight);
    }

    [Fact]
    public async Task EmptiedAsync_EndsWithTheConnectionsCancellation()
    {
        var inFlight = new ChunksInFlight(new ReadBudget(ReadBudget.DefaultBytes));
        inFlight.Add();
        using var cancel = new CancellationTokenSource();
        var emptied = inFlight.EmptiedAsync(cancel.Token);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => emptied.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Post_CountsAnAcceptedChunkIn_AndARefusedOneBackOut()
    {
        var budget = new ReadBudget(ReadBudget.DefaultBytes);
        var inFlight = new ChunksInFlight(budget);
        var open = new BufferBlock<Chunk>();
        inFlight.Post(open, Chunk.CopyOf([1, 2, 3]));
        Assert.Equal(1, inFlight.Count);
        Assert.Equal(1, budget.InFlight);

        var closed = new BufferBlock<Chunk>();
        closed.Complete();
        inFlight.Post(closed, Chunk.CopyOf([4, 5, 6]));
        Assert.Equal(1, inFlight.Count); // the refused chunk is not in flight
        Assert.Equal(1, budget.InFlight);

        Assert.True(open.TryReceive(out var accepted));
        Assert.Equal([1, 2, 3], accepted.Span.ToArray());
        accepted.Return();
        inFlight.Done();
        Assert.Equal(0, budget.InFlight);
    }

    [Fact]
    public void Close_GivesBackWhatNeverFinished_AndLateDonesAreNotCountedTwice()
    {
        var budget = new ReadBudget(ReadBudget.DefaultBytes);
        var other = new ChunksInFlight(budget);
        other.Add();
        var inFlight = new ChunksInFlight(budget);
        inFlight.Add();
        inFlight.Add();
        inFlight.Add();
        inFlight.Done();
        Assert.Equal(3, budget.InFlight);

        inFlight.Close();
        Assert.Equal(1, budget.InFlight); // only the other connection's chunk is left

        inFlight.Done();
        inFlight.Done();
        Assert.Equal(1, budget.InFlight);
    }
}
