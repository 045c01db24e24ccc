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

        for (var round = 1; round <= 3; round++)
        {
            // Generation 0 only: a sentinel that had been kept alive would have been promoted and missed here.
            var before = Volatile.Read(ref calls);
            GC.Collect(0, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
            Assert.True(Volatile.Read(ref calls) > before, $"no call back after collection {round}");
        }

        watch.Dispose();
        GC.Collect();
        GC.WaitForPendingFinalizers(); // the last sentinel goes, and leaves none behind
        var afterDispose = Volatile.Read(ref calls);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(afterDispose, Volatile.Read(ref calls));
    }
}
