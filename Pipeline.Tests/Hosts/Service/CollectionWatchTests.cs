using Shadowsocks.Pipeline.Hosts.Service;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

/// <summary>The watch calls back after every collection, generation 0 included, and never once disposed.</summary>
[Collection(nameof(GarbageCollectorCollection))]
public sealed class CollectionWatchTests
{
    [Fact]
    public void CallsBack_AfterEveryCollection_UntilDisposed()
    {
        var calls = 0;
        var watch = new CollectionWatch(() => Interlocked.Increment(ref calls));

        var byGenerationZero = 0;
        for (var round = 1; round <= 5; round++)
        {
            // Generation 0 only: a sentinel that had been kept alive would have been promoted and missed here. Another
            // thread's collection in between can still promote one (a leftover of an earlier test allocating), so a
            // miss is followed by a full collection, which must call back, and most rounds must not need it.
            var before = Volatile.Read(ref calls);
            GC.Collect(0, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
            if (Volatile.Read(ref calls) > before)
            {
                byGenerationZero++;
                continue;
            }

            GC.Collect(2, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
            Assert.True(Volatile.Read(ref calls) > before, $"no call back after collection {round}, even a full one");
        }

        Assert.True(byGenerationZero >= 3, $"generation-0 collections called back in {byGenerationZero} of 5 rounds");

        watch.Dispose();
        GC.Collect();
        GC.WaitForPendingFinalizers(); // the last sentinel goes, and leaves none behind
        var afterDispose = Volatile.Read(ref calls);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(afterDispose, Volatile.Read(ref calls));
    }
}
