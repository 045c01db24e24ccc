using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// Gives memory back after a burst. A proxy's load comes in bursts (many connections open, then sit idle); the GC only
/// runs when something allocates, so after a burst the heap keeps the burst's garbage and free space resident for as
/// long as the connections stay quiet, and the pool of relay buffers (<see cref="ChunkPool"/>) keeps what the burst
/// returned to it. While the process works, this checks once a second whether the last second was quiet (little
/// allocated, and few pooled buffers rented: a bulk transfer's reads and ciphertext come from the pool and allocate
/// nothing) after <see cref="TrimAfterBytes"/> of either since the last trim; if so it empties the pool and runs one
/// aggressive, compacting collection, which frees its buffers and decommits the freed regions. A busy process never
/// qualifies.
/// <para>Once a check finds the process quiet with nothing worth trimming, the checks stop: no timer runs, so an idle
/// proxy never wakes for this (a laptop's local sits idle most of the day). The next garbage collection starts them
/// again (<see cref="CollectionWatch"/>), and so does the pool's next new buffer: a collection comes only after a
/// generation-0 budget of allocation (about 16 MiB here, the same as <see cref="TrimAfterBytes"/>), and a burst after a
/// trim finds the pool empty, so a burst that could be worth a trim always brings them back. Before, the checks backed
/// off to one a minute and still woke an idle process.</para>
/// <para>Before the pool's rentals counted, a bulk burst (pooled, allocating next to nothing) looked quiet: the trim
/// ran in the middle of it, and after it found too little allocated to run again, so the pool's buffers (about 30 MiB
/// after 100 downloads) stayed resident.</para>
/// </summary>
internal sealed class IdleMemoryTrim : IDisposable
{
    /// <summary>A second with less allocated and rented from the pool than this counts as quiet.</summary>
    private const long QuietBytes = 256 * 1024;

    /// <summary>Allocation and pooled rentals since the last trim that make one worthwhile.</summary>
    private const long TrimAfterBytes = 16L * 1024 * 1024;

    /// <summary>The checks' period while they run.</summary>
    public static readonly TimeSpan CheckPeriod = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly ITimer _timer;
    private readonly IDisposable _collections;
    private readonly IDisposable _poolGrowth;
    private readonly ChunkPool _pool;
    private readonly Func<long> _allocatedBytes;
    private readonly Action _collect;
    private long _atLastTrim;
    private long _atLastTick;
    private bool _checking = true;

    /// <summary>Trims <paramref name="pool"/> (the process's: <see cref="ChunkPool.Shared"/>) and the heap.</summary>
    public IdleMemoryTrim(TimeProvider timeProvider, ChunkPool pool)
        : this(
            timeProvider,
            pool,
            static () => GC.GetTotalAllocatedBytes(),
            static () => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true),
            static onCollection => new CollectionWatch(onCollection))
    {
    }

    /// <summary>
    /// With the allocation counter, the collection and the watch for collections injected (tests). The pool's rentals
    /// count as work beside the allocation, a trim empties it before the collection, and its growth starts the checks.
    /// </summary>
    public IdleMemoryTrim(TimeProvider timeProvider, ChunkPool pool, Func<long> allocatedBytes, Action collect, Func<Action, IDisposable> watchCollections)
    {
        _pool = pool;
        _allocatedBytes = allocatedBytes;
        _collect = collect;
        _atLastTrim = _atLastTick = Work();
        _timer = timeProvider.CreateTimer(_ => Tick(), null, CheckPeriod, CheckPeriod);
        _collections = watchCollections(OnCollection);
        _poolGrowth = pool.WatchGrowth(OnCollection);
    }

    /// <summary>Collections this instance has run (for tests and -v).</summary>
    public int Trims { get; private set; }

    /// <summary>Whether the checks run (false: stopped until the next garbage collection).</summary>
    public bool Checking
    {
        get
        {
            lock (_gate)
            {
                return _checking;
            }
        }
    }

    public void Dispose()
    {
        _poolGrowth.Dispose();
        _collections.Dispose();
        _timer.Dispose();
    }

    /// <summary>One check (the timer calls it every <see cref="CheckPeriod"/> while the checks run).</summary>
    internal void Tick()
    {
        lock (_gate)
        {
            var now = Work();
            var quiet = now - _atLastTick < QuietBytes;
            _atLastTick = now;
            if (quiet && now - _atLastTrim >= TrimAfterBytes)
            {
                _pool.Trim(); // its buffers become garbage, which the collection frees
                _collect();
                Trims++;
                _atLastTrim = _atLastTick = Work();
            }

            if (quiet && _checking)
            {
                // Quiet, and nothing left worth a trim: nothing to check until the process allocates again.
                _checking = false;
                _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>
    /// A garbage collection ran (on the finalizer thread) or the pool allocated a buffer (on the renting thread): the
    /// process works again, so the checks resume.
    /// </summary>
    internal void OnCollection()
    {
        lock (_gate)
        {
            if (!_checking)
            {
                _checking = true;
                _atLastTick = Work();
                _timer.Change(CheckPeriod, CheckPeriod);
            }
        }
    }

    /// <summary>Bytes allocated and rented from the pool since the start: a bulk transfer's pooled buffers allocate nothing.</summary>
    private long Work() => _allocatedBytes() + _pool.RentedBytes;
}
