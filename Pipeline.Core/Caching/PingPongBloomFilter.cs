using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Caching;

/// <summary>
/// Remembers salts (and IVs) the server has accepted, as ss-libev's ppbloom does: two Bloom filters of half the
/// capacity each; items go into the current one, a lookup checks both, and when the current one is full the older
/// one is cleared and becomes current. So every item is remembered for at least capacity/2 further items, in fixed
/// memory. Positions come from a keyed hash (HMAC-SHA256 with a per-process random key), so nobody can aim
/// collisions at it. Thread-safe.
/// </summary>
internal sealed class PingPongBloomFilter
{
    private readonly object _gate = new();
    private readonly byte[] _key;
    private readonly int _perFilter;
    private readonly long _bits;
    private readonly int _hashes;
    private ulong[] _current;
    private ulong[] _previous;
    private int _count;

    /// <param name="capacity">Items remembered in all (ss-libev's server default: 1,000,000).</param>
    /// <param name="falsePositiveRate">Chance a fresh item is taken for a replay (ss-libev's: 1e-6).</param>
    public PingPongBloomFilter(int capacity = 1_000_000, double falsePositiveRate = 1e-6)
        : this(capacity, falsePositiveRate, RandomNumberGenerator.GetBytes(32))
    {
    }

    /// <summary>With a given hash key: tests, whose exact expectations must not meet a random false positive.</summary>
    internal PingPongBloomFilter(int capacity, double falsePositiveRate, byte[] key)
    {
        _key = key;
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
        Span<byte> digest = stackalloc byte[32];
        HMACSHA256.HashData(_key, item, digest);
        var h1 = BinaryPrimitives.ReadUInt64LittleEndian(digest);
        var h2 = BinaryPrimitives.ReadUInt64LittleEndian(digest[8..]) | 1;
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

    private long Position(ulong h1, ulong h2, int i) => (long)((h1 + ((ulong)i * h2)) % (ulong)_bits);
}
