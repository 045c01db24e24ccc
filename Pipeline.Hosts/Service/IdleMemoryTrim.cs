namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// Gives memory back after a burst. A proxy's load comes in bursts (many connections open, then sit idle); the GC only
/// runs when something allocates, so after a burst the heap keeps the burst's garbage and free space resident for as
/// long as the connections stay quiet. While the process allocates, this checks once a second whether the last second
/// was quiet (little allocated) after <see cref="TrimAfterBytes"/> since the last trim; if so it runs one aggressive,
/// compacting collection, which also decommits the freed regions. A busy process never qualifies.
/// <para>Once a check finds the process quiet with nothing worth trimming, the checks stop: no timer runs, so an idle
/// proxy never wakes for this (a laptop's local sits idle most of the day). The next garbage collection starts them
/// again (<see cref="CollectionWatch"/>): a collection comes only after a generation-0 budget of allocation (about
/// 16 MiB here, the same as <see cref="TrimAfterBytes"/>), so a burst that could be worth a trim always brings them
/// back. Before, the checks backed off to one a minute and still woke an idle process.</para>
/// </summary>
internal sealed class IdleMemoryTrim : IDisposable
{
    /// <summary>A second with less allocation than this counts as quiet.</summary>
    private const long QuietBytes = 256 * 1024;

    /// <summary>Allocation since the last trim that makes one worthwhile.</summary>
    private const long TrimAfterBytes = 16L * 1024 * 1024;

    /// <summary>The checks' period while they run.</summary>
    public static readonly TimeSpan CheckPeriod = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly ITimer _timer;
    private readonly IDisposable _collections;
    private readonly Func<long> _allocatedBytes;
    private readonly Action _collect;
    private long _atLastTrim;
    private long _atLastTick;
    private bool _checking = true;

    public IdleMemoryTrim(TimeProvider timeProvider)
        : this(
            timeProvider,
            static () => GC.GetTotalAllocatedBytes(),
            static () => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true),
            static onCollection => new CollectionWatch(onCollection))
    {
    }

    /// <summary>With the allocation counter, the collection and the watch for collections injected (tests).</summary>
    public IdleMemoryTrim(TimeProvider timeProvider, Func<long> allocatedBytes, Action collect, Func<Action, IDisposable> watchCollections)
    {
        _allocatedBytes = allocatedBytes;
        _collect = collect;
        _atLastTrim = _atLastTick = allocatedBytes();
        _timer = timeProvider.CreateTimer(_ => Tick(), null, CheckPeriod, CheckPeriod);
        _collections = watchCollections(OnCollection);
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
        _collections.Dispose();
        _timer.Dispose();
    }

    /// <summary>One check (the timer calls it every <see cref="CheckPeriod"/> while the checks run).</summary>
    internal void Tick()
    {
        lock (_gate)
        {
            var now = _allocatedBytes();
            var quiet = now - _atLastTick < QuietBytes;
            _atLastTick = now;
            if (quiet && now - _atLastTrim >= TrimAfterBytes)
            {
                _collect();
                Trims++;
                _atLastTrim = _atLastTick = _allocatedBytes();
            }

            if (quiet && _checking)
            {
                // Quiet, and nothing left worth a trim: nothing to check until the process allocates again.
                _checking = false;
                _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>A garbage collection ran (on the finalizer thread): the process allocates again, so the checks resume.</summary>
    internal void OnCollection()
    {
        lock (_gate)
        {
            if (!_checking)
            {
                _checking = true;
                _atLastTick = _allocatedBytes();
                _timer.Change(CheckPeriod, CheckPeriod);
            }
        }
    }
}
