namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// A byte counter one forward block adds to and its direction's span reads at the end; every addition goes to the
/// process's <see cref="Core.Diagnostics.TrafficTotal"/> too.
/// </summary>
internal sealed class ByteCount
{
    private long _value;

    public long Value => Interlocked.Read(ref _value);

    public void Add(int bytes)
    {
        Interlocked.Add(ref _value, bytes);
        Core.Diagnostics.TrafficTotal.Add(bytes);
    }
}
