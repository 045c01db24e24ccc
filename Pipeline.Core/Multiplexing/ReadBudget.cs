namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// Bounds what the TCP pumps reading at full size hold together. A pump that finds a full buffer (a burst of data,
/// a bulk transfer) counts itself busy until its socket goes quiet; each of its reads then takes the largest buffer
/// (a pool bucket of <see cref="Largest"/> bytes, halved down to <see cref="Smallest"/>) for which all busy pumps
/// together stay within the budget. A few busy connections read 128 KiB at a time (bulk speed); a thousand read
/// 16 KiB (each moves a little at a time anyway, and their buffers otherwise came to a megabyte per connection).
/// One budget per relay, shared by its connections' pumps.
/// <para>It also bounds the chunks a pump keeps moving at once. A pump may hand its chain a chunk while the previous
/// ones are still being ciphered and sent (read, cipher and send overlap: bulk speed) only while the relay's chunks in
/// flight, each counted at <see cref="BufferSize"/>, fit the budget; beyond it, it reads its next chunk once its own
/// chain has sent the last (<see cref="ChunksInFlight"/>), as ss-libev's one buffer per direction does. A pump only
/// ever waits for its own chain, never for another connection's.</para>
/// </summary>
internal sealed class ReadBudget(long bytes)
{
    /// <summary>The largest full-size read buffer.</summary>
    public const int Largest = 128 * 1024;

    /// <summary>The smallest: one AEAD chunk's worth, whatever the number of busy connections.</summary>
    public const int Smallest = 16 * 1024;

    /// <summary>The default: 32 MiB of full-size reads (128 KiB for up to 256 busy pumps, 16 KiB from 2,048).</summary>
    public const long DefaultBytes = 32L * 1024 * 1024;

    private int _busy;

    private int _inFlight;

    /// <summary>Pumps reading at full size now.</summary>
    public int Busy => Volatile.Read(ref _busy);

    /// <summary>The buffer a busy pump reads into now: a power of two between <see cref="Smallest"/> and <see cref="Largest"/>.</summary>
    public int BufferSize
    {
        get
        {
            var share = bytes / Math.Max(1, Busy);
            var size = Largest;
            while (size > Smallest && size > share)
            {
                size /= 2;
            }

            return size;
        }
    }

    /// <summary>Chunks the relay's pumps have handed to their chains and not yet seen sent.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Whether one more chunk in flight, beside those already moving, stays within the budget.</summary>
    public bool HasRoomForMore => (InFlight + 1L) * BufferSize <= bytes;

    /// <summary>A pump starts reading at full size.</summary>
    public void Enter() => Interlocked.Increment(ref _busy);

    /// <summary>A busy pump's socket went quiet, or its stream ended.</summary>
    public void Leave() => Interlocked.Decrement(ref _busy);

    /// <summary>Chunks handed to a chain.</summary>
    internal void Handed(int chunks) => Interlocked.Add(ref _inFlight, chunks);

    /// <summary>Chunks sent, or dropped with their connection.</summary>
    internal void Finished(int chunks) => Interlocked.Add(ref _inFlight, -chunks);
}
