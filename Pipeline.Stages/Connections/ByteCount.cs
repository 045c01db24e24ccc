namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>A byte counter one forward block adds to and its direction's span reads at the end.</summary>
internal sealed class ByteCount
{
    private long _value;

    public long Value => Interlocked.Read(ref _value);

    public void Add(int bytes) => Interlocked.Add(ref _value, bytes);
}
