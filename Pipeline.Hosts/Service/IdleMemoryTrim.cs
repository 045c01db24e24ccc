namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// Gives memory back after a burst. A proxy's load comes in bursts (many connections open, then sit idle); the GC only
/// runs when something allocates, so after a burst the heap keeps the burst's garbage and free space resident for as
/// long as the connections stay quiet. Once a second this checks whether the process allocated anything to speak of
/// (a quiet second) after having allocated <see cref="TrimAfterBytes"/> since the last trim; if so it runs one
/// aggressive, compacting collection, which also decommits the freed regions. A busy process never qualifies.
/// While nothing happens the checks back off (every 2, 4, … up to <see cref="MaxPeriod"/> seconds), so an idle
/// proxy does not wake its threads every second (a laptop's local sits idle most of the day); the first check that
/// finds allocation to speak of goes back to once a second.
/// </summary>
internal sealed class IdleMemoryTrim : IDisposable
{
    /// <summary>A second with less allocation than this counts as quiet.</summary>
    private const long QuietBytes = 256 * 1024;

    /// <summary>Allocation since the last trim that makes one worthwhile.</summary>
    private const long TrimAfterBytes = 16L * 1024 * 1024;

    /// <summary>The check's period while the process is busy, and right after.</summary>
    public static readonly TimeSpan MinPeriod = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between checks of an idle process: how late a trim can come after a burst in a long quiet spell.</summary>
    public static readonly TimeSpan MaxPeriod = TimeSpan.FromSeconds(64);

    private readonly ITimer _timer;
    private readonly Func<long> _allocatedBytes;
    private readonly Action _collect;
    private long _atLastTrim;
    private long _atLastTick;
    private TimeSpan _period = MinPeriod;

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
        _timer = timeProvider.CreateTimer(_ => Tick(), null, MinPeriod, MinPeriod);
    }

    /// <summary>Collections this instance has run (for tests and -v).</summary>
    public int Trims { get; private set; }

    public void Dispose() => _timer.Dispose();

    /// <summary>The wait before the next check.</summary>
    public TimeSpan Period => _period;

    /// <summary>One check (the timer calls it every <see cref="Period"/>).</summary>
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

        var next = quiet ? TimeSpan.FromTicks(Math.Min(_period.Ticks * 2, MaxPeriod.Ticks)) : MinPeriod;
        if (next != _period)
        {
            _period = next;
            _timer.Change(next, next);
        }
    }
}
