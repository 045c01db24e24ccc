namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// A piece of one connection's byte stream in a buffer rented from <see cref="ChunkPool.Shared"/>.
/// Ownership moves with the message: whoever consumes a chunk returns its buffer (<see cref="Return"/>) exactly once.
/// A chunk still queued in a block when the connection is torn down is left to the garbage collector.
/// </summary>
internal readonly struct Chunk(byte[] buffer, int length)
{
    public byte[] Buffer { get; } = buffer;

    public int Length { get; } = length;

    public ReadOnlyMemory<byte> Memory => Buffer.AsMemory(0, Length);

    public ReadOnlySpan<byte> Span => Buffer.AsSpan(0, Length);

    public static byte[] RentBuffer(int minimumLength) => ChunkPool.Shared.Rent(minimumLength);

    /// <summary>Copies <paramref name="data"/> into a new rented chunk.</summary>
    public static Chunk CopyOf(ReadOnlySpan<byte> data)
    {
        var buffer = RentBuffer(Math.Max(data.Length, 1));
        data.CopyTo(buffer);
        return new Chunk(buffer, data.Length);
    }

    public void Return() => ChunkPool.Shared.Return(Buffer);
}
