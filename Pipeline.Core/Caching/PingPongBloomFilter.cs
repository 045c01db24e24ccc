using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Caching;

/// <summary>
/// Remembers salts (and IVs) the server has accepted, as ss-libev's ppbloom does: two Bloom filters of half the
/// capacity each; items go into the current one, a lookup checks both, and when the current one is full the older
/// one is cleared and becomes current. So every item is remembered for at least capacity/2 further items, in fixed
/// memory. Positions come from two 64-bit hashes keyed at random per process (a SplitMix64-finalized chain over the
/// item's words), so they cannot be predicted from outside; and only salts of streams and packets that authenticated
/// are added, so only a holder of the key could add any. (HMAC-SHA256 through .NET did it before: more than a
/// microsecond per item, which every UDP datagram now pays: bench/RESULTS.md, thirteenth session.) Thread-safe.
/// </summary>
internal sealed class PingPongBloomFilter : ISaltFilter
{
    private readonly object _gate = new();
    private readonly ulong _seed1;
    private readonly ulong _seed2;
    private readonly int _perFilter;
    private readonly long _bits;
    private readonly int _hashes;
    private ulong[] _current;
    private ulong[] _previous;
    private int _count;

    /// <param name="capacity">Items remembered in all (ss-libev's server default: 1,000,000).</param>
    /// <param name="falsePositiveRate">Chance a fresh item is taken for a replay (ss-libev's: 1e-6).</param>
    public PingPongBloomFilter(int capacity = 1_000_000, double falsePositiveRate = 1e-6)
        : this(capacity, falsePositiveRate, RandomNumberGenerator.GetBytes(16))
    {
    }

    /// <summary>With a given hash key: tests, whose exact expectations must not meet a random false positive.</summary>
    internal PingPongBloomFilter(int capacity, double falsePositiveRate, byte[] key)
    {
        _seed1 = BinaryPrimitives.ReadUInt64LittleEndian(key);
        _seed2 = BinaryPrimitives.ReadUInt64LittleEndian(key.AsSpan(8)) ^ 0x632BE59BD9B4E019; // never the first's (h2 must not follow h1)
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        ArgumentOutOfRangeException.ThrowIfNotEqual(falsePositiveRate is > 0 and < 1, true);
        _perFilter = capacity / 2;
        _bits = Math.Max(64, (long)Math.Ceiling(-_perFilter * Math.Log(falsePositiveRate) / (Math.Log(2) * Math.Log(2))));
        _hashes = Math.Max(1, (int)Math.Round(_bits / (double)_perFilter * Math.Log(2)));
        _current = new ulong[(_bits + 63) / 64];
        _previous = new ulong[_current.Length];
    }

    /// <summary>Bytes of memory the two filters hold.</summary>
    public long MemoryBytes => 2L * _current.Length * sizeof(ulong);

    /// <summary>Adds the item; false (and nothing changes) when it was seen before: a replay.</summary>
    public bool TryAdd(ReadOnlySpan<byte> item)
    {
        var h1 = Hash(_seed1, item);
        var h2 = Hash(_seed2, item) | 1;
        lock (_gate)
        {
            if (Contains(_current, h1, h2) || Contains(_previous, h1, h2))
            {
                return false;
            }

            if (_count >= _perFilter)
            {
                (_current, _previous) = (_previous, _current);
                Array.Clear(_current);
                _count = 0;
            }

            for (var i = 0; i < _hashes; i++)
            {
                var bit = Position(h1, h2, i);
                _current[bit >> 6] |= 1UL << (int)(bit & 63);
            }

            _count++;
            return true;
        }
    }

    private bool Contains(ulong[] filter, ulong h1, ulong h2)
    {
        for (var i = 0; i < _hashes; i++)
        {
            var bit = Position(h1, h2, i);
            if ((filter[bit >> 6] & (1UL << (int)(bit & 63))) == 0)
            {
                return false;
            }
        }

        return true;
    }

    private static ulong Hash(ulong seed, ReadOnlySpan<byte> item)
    {
        var hash = seed ^ ((ulong)item.Length * 0x9E3779B97F4A7C15);
        for (; item.Length >= 8; item = item[8..])
        {
            hash = Mix(hash ^ BinaryPrimitives.ReadUInt64LittleEndian(item));
        }

        if (!item.IsEmpty)
        {
            Span<byte> tail = stackalloc byte[8];
            tail.Clear();
            item.CopyTo(tail);
            hash = Mix(hash ^ BinaryPrimitives.ReadUInt64LittleEndian(tail));
        }

        return Mix(hash);
    }

    /// <summary>SplitMix64's finalizer: a bijection that spreads every input bit over the output.</summary>
    private static ulong Mix(ulong x)
    {
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
        return x ^ (x >> 31);
    }

    private long Position(ulong h1, ulong h2, int i) => (long)((h1 + ((ulong)i * h2)) % (ulong)_bits);
}
