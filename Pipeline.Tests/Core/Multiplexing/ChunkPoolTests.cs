using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

/// <summary>
/// The relay's buffer pool: a power-of-two buffer at or above the size asked, a returned buffer rented again without
/// an allocation, and a trim that lets the collector free every buffer the pool held (the shared array pool keeps
/// them).
/// </summary>
public sealed class ChunkPoolTests
{
    [Theory]
    [InlineData(1, 16)] // small: the shared array pool's
    [InlineData(8 * 1024, 8 * 1024)]
    [InlineData(8 * 1024 + 1, 16 * 1024)]
    [InlineData(16 * 1024, 16 * 1024)]
    [InlineData(128 * 1024, 128 * 1024)]
    [InlineData(128 * 1024 + 34, 256 * 1024)]
    [InlineData(65_908, 128 * 1024)] // a UDP datagram's buffer
    [InlineData(1024 * 1024, 1024 * 1024)]
    [InlineData(1024 * 1024 + 1, 1024 * 1024 + 1)] // beyond the largest: allocated as asked
    public void Rent_GivesThePowerOfTwoAtOrAboveTheSize(int size, int expected)
    {
        var pool = new ChunkPool();
        var buffer = pool.Rent(size);
        Assert.Equal(expected, buffer.Length);
        pool.Return(buffer);
    }

    [Fact]
    public void AReturnedBuffer_IsRentedAgain_AndEveryRentalIsCounted()
    {
        var pool = new ChunkPool();
        var first = pool.Rent(100_000);
        Assert.Equal(128 * 1024, pool.RentedBytes);
        pool.Return(first);
        Assert.Equal(128 * 1024, pool.PooledBytes);

        Assert.Same(first, pool.Rent(128 * 1024));
        Assert.Equal(2 * 128 * 1024, pool.RentedBytes);
        Assert.Equal(0, pool.PooledBytes);
    }

    [Fact]
    public void TheGrowthWatch_SeesOnlyNewBuffers_UntilDisposed()
    {
        var pool = new ChunkPool();
        var grew = 0;
        var watch = pool.WatchGrowth(() => grew++);
        pool.Return(pool.Rent(64 * 1024));
        Assert.Equal(1, grew);
        pool.Return(pool.Rent(64 * 1024)); // from the pool
        pool.Return(pool.Rent(100)); // the shared array pool's
        Assert.Equal(1, grew);

        watch.Dispose();
        pool.Rent(256 * 1024);
        Assert.Equal(1, grew);
    }

    [Fact]
    public void Trim_DropsEveryBuffer_AndTheCollectorFreesThem()
    {
        var pool = new ChunkPool();
        var pooled = RentAndReturn(pool, 16, 128 * 1024).Concat(RentAndReturn(pool, 16, 256 * 1024)).ToArray();
        Assert.Equal(16 * (128 + 256) * 1024, pool.PooledBytes);

        GC.Collect();
        Assert.All(pooled, buffer => Assert.True(buffer.IsAlive, "the pool lost a buffer before the trim"));

        Assert.Equal(16 * (128 + 256) * 1024, pool.Trim());
        Assert.Equal(0, pool.PooledBytes);
        GC.Collect();
        Assert.All(pooled, buffer => Assert.False(buffer.IsAlive, "a buffer outlived the trim"));
    }

    [Fact]
    public void ABufferBeyondWhatThePoolKeeps_IsDropped()
    {
        var pool = new ChunkPool();
        var keeps = ChunkPool.PerCore * Math.Clamp(Environment.ProcessorCount, 1, 64);
        RentAndReturn(pool, keeps + 3, 32 * 1024);
        Assert.Equal((long)keeps * 32 * 1024, pool.PooledBytes);

        pool.Return(new byte[48 * 1024]); // not a size the pool keeps
        Assert.Equal((long)keeps * 32 * 1024, pool.PooledBytes);
    }

    private static WeakReference[] RentAndReturn(ChunkPool pool, int count, int size)
    {
        var buffers = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            buffers[i] = pool.Rent(size);
        }

        var references = new WeakReference[count];
        for (var i = 0; i < count; i++)
        {
            references[i] = new WeakReference(buffers[i]);
            pool.Return(buffers[i]);
        }

        return references;
    }
}
