using System.Buffers;
using System.Numerics;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// The pool of the large buffers chunks and datagrams move in (<see cref="Smallest"/> to <see cref="Largest"/> bytes:
/// busy connections' reads, their ciphertext, UDP datagrams), which the idle memory trim can empty: <see cref="Trim"/>
/// drops every buffer it holds, so the next full collection frees them. Smaller requests go to
/// <see cref="ArrayPool{T}.Shared"/>, whose few small arrays do not matter.
/// <para>Why not <see cref="ArrayPool{T}.Shared"/> for all: it keeps up to 32 arrays per size and core, plus one per
/// size and thread, and under low memory pressure gives back one array per size and core per full collection, a
/// minute after it filled; nothing runs full collections in a quiet process, so a burst of bulk transfers left about 30
/// MiB of 128 and 256 KiB arrays resident for good (100 connections through a server: 59 MiB resident before, 102
/// after, minutes later).</para>
/// <para>The same shape as the shared pool's per-core level: for each power-of-two size, one small stack per core
/// behind a lock that is taken only by that core's threads unless it is empty or full. Rent and return are a lock
/// each, no allocation while the pool has the size.</para>
/// </summary>
internal sealed class ChunkPool
{
    /// <summary>The smallest size pooled here: one AEAD chunk's worth, a busy connection's smallest read (<see cref="ReadBudget.Smallest"/>).</summary>
    public const int Smallest = ReadBudget.Smallest;

    /// <summary>
    /// The largest size pooled here, above any the relay rents (a 128 KiB read's ciphertext takes 256 KiB, a datagram
    /// 128 KiB); larger requests are allocated and dropped when returned.
    /// </summary>
    public const int Largest = 1024 * 1024;

    /// <summary>Buffers of one size one core's stack keeps (as <see cref="ArrayPool{T}.Shared"/> keeps per core).</summary>
    public const int PerCore = 32;

    private const int SmallestShift = 14; // log2(Smallest)

    private readonly Stack[][] _sizes;

    private Action? _onGrowth;

    public ChunkPool()
    {
        var cores = Math.Clamp(Environment.ProcessorCount, 1, 64);
        _sizes = new Stack[BitOperations.Log2((uint)Largest) - SmallestShift + 1][];
        for (var i = 0; i < _sizes.Length; i++)
        {
            _sizes[i] = new Stack[cores];
            for (var core = 0; core < cores; core++)
            {
                _sizes[i][core] = new Stack();
            }
        }
    }

    /// <summary>The process's pool.</summary>
    public static ChunkPool Shared { get; } = new();

    /// <summary>Bytes handed out from this pool's sizes since the start (a sign of traffic that allocates nothing).</summary>
    public long RentedBytes
    {
        get
        {
            long total = 0;
            foreach (var size in _sizes)
            {
                foreach (var stack in size)
                {
                    total += stack.RentedBytes;
                }
            }

            return total;
        }
    }

    /// <summary>Bytes the pool holds now (returned, not rented again).</summary>
    public long PooledBytes
    {
        get
        {
            long total = 0;
            for (var i = 0; i < _sizes.Length; i++)
            {
                foreach (var stack in _sizes[i])
                {
                    total += (long)stack.Count * (Smallest << i);
                }
            }

            return total;
        }
    }

    /// <summary>A buffer of at least <paramref name="minimumLength"/> bytes, to <see cref="Return"/> once.</summary>
    public byte[] Rent(int minimumLength)
    {
        if (minimumLength <= Smallest / 2)
        {
            return ArrayPool<byte>.Shared.Rent(minimumLength);
        }

        if (minimumLength > Largest)
        {
            return GC.AllocateUninitializedArray<byte>(minimumLength);
        }

        var index = BitOperations.Log2((uint)minimumLength - 1) + 1 - SmallestShift; // the power of two at or above it
        var length = Smallest << index;
        var stacks = _sizes[index];
        var core = Thread.GetCurrentProcessorId() % stacks.Length;
        for (var i = 0; i < stacks.Length; i++)
        {
            if (stacks[core].TryPop(length) is { } buffer)
            {
                return buffer;
            }

            if (++core == stacks.Length)
            {
                core = 0;
            }
        }

        // A size the pool does not have (first use, or after a trim): the pool grows, and a trim has something to give back later.
        stacks[core].Missed(length);
        Volatile.Read(ref _onGrowth)?.Invoke();
        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>Takes back a buffer from <see cref="Rent"/>; one of a size this pool does not keep, or beyond what it keeps, is dropped.</summary>
    public void Return(byte[] buffer)
    {
        var length = buffer.Length;
        if (length < Smallest)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return;
        }

        if (length > Largest || !BitOperations.IsPow2(length))
        {
            return;
        }

        var stacks = _sizes[BitOperations.Log2((uint)length) - SmallestShift];
        var core = Thread.GetCurrentProcessorId() % stacks.Length;
        for (var i = 0; i < stacks.Length; i++)
        {
            if (stacks[core].TryPush(buffer))
            {
                return;
            }

            if (++core == stacks.Length)
            {
                core = 0;
            }
        }
    }

    /// <summary>Drops every buffer the pool holds (the idle trim, before its collection); returns the bytes dropped.</summary>
    public long Trim()
    {
        long dropped = 0;
        for (var i = 0; i < _sizes.Length; i++)
        {
            foreach (var stack in _sizes[i])
            {
                dropped += (long)stack.Clear() * (Smallest << i);
            }
        }

        return dropped;
    }

    /// <summary>
    /// Calls <paramref name="callback"/> whenever the pool allocates a buffer (it grows: the first burst, or one after a
    /// trim), on the renting thread, until disposed.
    /// </summary>
    public IDisposable WatchGrowth(Action callback)
    {
        Update(static (all, one) => (Action)Delegate.Combine(all, one), callback);
        return new GrowthWatch(this, callback);
    }

    private void Update(Func<Action?, Action, Action?> change, Action callback)
    {
        var current = Volatile.Read(ref _onGrowth);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref _onGrowth, change(current, callback), current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private sealed class GrowthWatch(ChunkPool pool, Action callback) : IDisposable
    {
        public void Dispose() => pool.Update(static (all, one) => (Action?)Delegate.Remove(all, one), callback);
    }

    /// <summary>One core's buffers of one size.</summary>
    private sealed class Stack
    {
        private readonly Lock _gate = new();
        private readonly byte[]?[] _buffers = new byte[PerCore][];
        private int _count;
        private long _rentedBytes;

        public int Count => Volatile.Read(ref _count);

        public long RentedBytes => Volatile.Read(ref _rentedBytes);

        public byte[]? TryPop(int length)
        {
            lock (_gate)
            {
                if (_count == 0)
                {
                    return null;
                }

                _rentedBytes += length;
                var buffer = _buffers[--_count];
                _buffers[_count] = null;
                return buffer;
            }
        }

        public void Missed(int length)
        {
            lock (_gate)
            {
                _rentedBytes += length;
            }
        }

        public bool TryPush(byte[] buffer)
        {
            lock (_gate)
            {
                if (_count == _buffers.Length)
                {
                    return false;
                }

                _buffers[_count++] = buffer;
                return true;
            }
        }

        public int Clear()
        {
            lock (_gate)
            {
                var count = _count;
                Array.Clear(_buffers);
                _count = 0;
                return count;
            }
        }
    }
}
