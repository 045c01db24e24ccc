namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// Gives memory back after a burst. A proxy's load comes in bursts (many connections open, then sit idle); the GC only
/// runs when something allocates, so after a burst the heap keeps the burst's garbage and free space resident for as
/// long as the connections stay quiet. Once a second this checks whether the process allocated anything to speak of
/// (a quiet second) after having allocated <see cref="TrimAfterBytes"/> since the last trim; if so it runs one
/// aggressive, compacting collection, which also decommits the freed regions. A busy process never qualifies.
/// </summary>
internal sealed class IdleMemoryTrim : IDisposable
{
    /// <summary>A second with less allocation than this counts as quiet.</summary>
    private const long QuietBytes = 256 * 1024;

    /// <summary>Allocation since the last trim that makes one worthwhile.</summary>
    private const long TrimAfterBytes = 16L * 1024 * 1024;

    private static readonly TimeSpan s_period = TimeSpan.FromSeconds(1);

    private readonly ITimer _timer;
    private readonly Func<long> _allocatedBytes;
    private readonly Action _collect;
    private long _atLastTrim;
    private long _atLastTick;

    public IdleMemoryTrim(TimeProvider timeProvider)
        : this(timeProvider, static () => GC.GetTotalAllocatedBytes(), static () => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true))
    {
    }

    /// <summary>With the allocation counter and the collection injected (tests).</summary>
    public IdleMemoryTrim(TimeProvider timeProvider, Func<long> allocatedBytes, Action collect)
    {
        _allocatedBytes = allocatedBytes;
        _collect = collect;
        _atLastTrim = _atLastTick = allocatedBytes();
        _timer = timeProvider.CreateTimer(_ => Tick(), null, s_period, s_period);
    }

    /// <summary>Collections this instance has run (for tests and -v).</summary>
    public int Trims { get; private set; }

    public void Dispose() => _timer.Dispose();

    /// <summary>One check (the timer calls it once a second).</summary>
    internal void Tick()
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
    }
}
