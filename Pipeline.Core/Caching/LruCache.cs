using System.Reactive.Concurrency;

namespace Shadowsocks.Pipeline.Core.Caching;

/// <summary>
/// A least-recently-used cache with a size bound and time-based expiry on an injected <see cref="IScheduler"/>
/// (virtual time in tests). With <c>sliding</c> expiry every hit pushes an entry's deadline out (UDP NAT entries:
/// a busy entry never expires); without it an entry lives its TTL from when it was set (DNS answers).
/// Every entry that leaves, for whatever reason, goes through <c>onEvicted</c> exactly once, outside the lock, so
/// the owner can close what the entry holds.
/// </summary>
internal sealed class LruCache<TKey, TValue> : IDisposable
    where TKey : notnull
{
    private readonly object _gate = new();
    private readonly Dictionary<TKey, LinkedListNode<Entry>> _map;
    private readonly LinkedList<Entry> _order = new(); // most recently used first
    private readonly int _capacity;
    private readonly TimeSpan _ttl;
    private readonly bool _sliding;
    private readonly IScheduler _scheduler;
    private readonly Action<TKey, TValue, EvictionReason>? _onEvicted;
    private IDisposable? _sweep;
    private DateTimeOffset _sweepAt = DateTimeOffset.MaxValue;
    private bool _disposed;

    public LruCache(int capacity, TimeSpan ttl, bool sliding, IScheduler scheduler, Action<TKey, TValue, EvictionReason>? onEvicted = null, IEqualityComparer<TKey>? comparer = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        _capacity = capacity;
        _ttl = ttl;
        _sliding = sliding;
        _scheduler = scheduler;
        _onEvicted = onEvicted;
        _map = new Dictionary<TKey, LinkedListNode<Entry>>(comparer);
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _map.Count;
            }
        }
    }

    /// <summary>Finds a live entry and marks it most recently used (and, when sliding, extends its life).</summary>
    public bool TryGet(TKey key, out TValue value)
    {
        lock (_gate)
        {
            if (_map.TryGetValue(key, out var node) && node.Value.ExpiresAt > _scheduler.Now)
            {
                Touch(node);
                value = node.Value.Value;
                return true;
            }
        }

        value = default!;
        return false;
    }

    /// <summary>Finds a live entry without marking it used (its place and life stay as they are).</summary>
    public bool TryPeek(TKey key, out TValue value)
    {
        lock (_gate)
        {
            if (_map.TryGetValue(key, out var node) && node.Value.ExpiresAt > _scheduler.Now)
            {
                value = node.Value.Value;
                return true;
            }
        }

        value = default!;
        return false;
    }

    /// <summary>Adds or replaces an entry; a replaced value and any entry pushed out by the size bound are evicted.</summary>
    public void Set(TKey key, TValue value, TimeSpan? ttl = null)
    {
        var evicted = new List<(TKey, TValue, EvictionReason)>();
        lock (_gate)
        {
            SetLocked(key, value, ttl ?? _ttl, evicted);
        }

        Notify(evicted);
    }

    /// <summary>
    /// The live entry for <paramref name="key"/> (marked used), or one made by <paramref name="create"/> and added.
    /// Atomic: concurrent callers for one key get the same value; <paramref name="create"/> runs under the cache's
    /// lock, so it must be quick and must not call back into the cache.
    /// </summary>
    public TValue GetOrAdd(TKey key, Func<TKey, TValue> create)
    {
        var evicted = new List<(TKey, TValue, EvictionReason)>();
        TValue value;
        lock (_gate)
        {
            if (_map.TryGetValue(key, out var node) && node.Value.ExpiresAt > _scheduler.Now)
            {
                Touch(node);
                return node.Value.Value;
            }

            ObjectDisposedException.ThrowIf(_disposed, this); // before create: a value made now would have no owner
            value = create(key);
            SetLocked(key, value, _ttl, evicted);
        }

        Notify(evicted);
        return value;
    }

    public bool Remove(TKey key)
    {
        TValue value;
        lock (_gate)
        {
            if (!_map.Remove(key, out var node))
            {
                return false;
            }

            _order.Remove(node);
            value = node.Value.Value;
        }

        _onEvicted?.Invoke(key, value, EvictionReason.Removed);
        return true;
    }

    /// <summary>Removes every entry whose key matches (for example: all NAT entries of one client address).</summary>
    public int RemoveWhere(Func<TKey, bool> match) => RemoveWhere((key, _) => match(key));

    /// <summary>Removes every entry that <paramref name="match"/> picks by key and value (it runs under the cache's lock: keep it short).</summary>
    public int RemoveWhere(Func<TKey, TValue, bool> match)
    {
        var evicted = new List<(TKey, TValue, EvictionReason)>();
        lock (_gate)
        {
            foreach (var (key, node) in _map.Where(entry => match(entry.Key, entry.Value.Value.Value)).ToList())
            {
                _map.Remove(key);
                _order.Remove(node);
                evicted.Add((key, node.Value.Value, EvictionReason.Removed));
            }
        }

        Notify(evicted);
        return evicted.Count;
    }

    public void Dispose()
    {
        var evicted = new List<(TKey, TValue, EvictionReason)>();
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _sweep?.Dispose();
            evicted.AddRange(_order.Select(e => (e.Key, e.Value, EvictionReason.Disposed)));
            _map.Clear();
            _order.Clear();
        }

        Notify(evicted);
    }

    private void SetLocked(TKey key, TValue value, TimeSpan life, List<(TKey, TValue, EvictionReason)> evicted)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_map.Remove(key, out var old))
        {
            _order.Remove(old);
            evicted.Add((key, old.Value.Value, EvictionReason.Removed));
        }

        var node = _order.AddFirst(new Entry(key, value, life, _scheduler.Now + life));
        _map[key] = node;
        while (_map.Count > _capacity)
        {
            var last = _order.Last!;
            _order.RemoveLast();
            _map.Remove(last.Value.Key);
            evicted.Add((last.Value.Key, last.Value.Value, EvictionReason.Capacity));
        }

        ScheduleSweep(node.Value.ExpiresAt);
    }

    private void Touch(LinkedListNode<Entry> node)
    {
        if (_sliding)
        {
            node.Value.ExpiresAt = _scheduler.Now + node.Value.Life;
        }

        if (node != _order.First)
        {
            _order.Remove(node);
            _order.AddFirst(node);
        }
    }

    /// <summary>Keeps one timer, due at the earliest deadline known when it was set; a sweep reschedules itself.</summary>
    private void ScheduleSweep(DateTimeOffset at)
    {
        if (at >= _sweepAt)
        {
            return;
        }

        _sweep?.Dispose();
        _sweepAt = at;
        _sweep = _scheduler.Schedule(at, Sweep);
    }

    private void Sweep()
    {
        var evicted = new List<(TKey, TValue, EvictionReason)>();
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            var now = _scheduler.Now;
            var next = DateTimeOffset.MaxValue;
            for (var node = _order.Last; node is not null;)
            {
                var previous = node.Previous;
                if (node.Value.ExpiresAt <= now)
                {
                    _order.Remove(node);
                    _map.Remove(node.Value.Key);
                    evicted.Add((node.Value.Key, node.Value.Value, EvictionReason.Expired));
                }
                else if (node.Value.ExpiresAt < next)
                {
                    next = node.Value.ExpiresAt;
                }

                node = previous;
            }

            _sweepAt = DateTimeOffset.MaxValue;
            _sweep = null;
            if (next != DateTimeOffset.MaxValue)
            {
                ScheduleSweep(next);
            }
        }

        Notify(evicted);
    }

    private void Notify(List<(TKey Key, TValue Value, EvictionReason Reason)> evicted)
    {
        foreach (var (key, value, reason) in evicted)
        {
            _onEvicted?.Invoke(key, value, reason);
        }
    }

    private sealed class Entry(TKey key, TValue value, TimeSpan life, DateTimeOffset expiresAt)
    {
        public TKey Key { get; } = key;

        public TValue Value { get; } = value;

        public TimeSpan Life { get; } = life;

        public DateTimeOffset ExpiresAt { get; set; } = expiresAt;
    }
}
