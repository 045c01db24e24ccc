using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// A TCP direction's byte counter: its forward block adds each chunk it sent, and its span reads the sum at the end.
/// Every addition goes to the process's <see cref="TrafficTotal"/> and to <see cref="PipelineTelemetry.BytesRelayed"/>
/// as it happens, so a connection open for hours shows its throughput while it is open. The metric's tags are made once
/// per direction: a chunk's count allocates nothing.
/// </summary>
internal sealed class ByteCount
{
    private readonly KeyValuePair<string, object?>[] _tags;
    private long _value;

    /// <param name="direction"><see cref="Direction.Upstream"/> or <see cref="Direction.Downstream"/>.</param>
    /// <param name="user">The connection's user, when it has one (a multi-user 2022 server, a local with <c>--socks5-auth</c>).</param>
    public ByteCount(string direction, string? user)
    {
        _tags = user is null
            ? [new(TagNames.Direction, direction), TransportTags.Tcp]
            : [new(TagNames.Direction, direction), TransportTags.Tcp, new(TagNames.UserName, user)];
    }

    public long Value => Interlocked.Read(ref _value);

    public void Add(int bytes)
    {
        Interlocked.Add(ref _value, bytes);
        TrafficTotal.Add(bytes);
        PipelineTelemetry.BytesRelayed.Add(bytes, _tags);
    }
}
