namespace Shadowsocks.Pipeline.Core.Caching;

/// <summary>Remembers the salts of streams and packets that authenticated, to turn replays away.</summary>
internal interface ISaltFilter
{
    /// <summary>Adds <paramref name="salt"/>; false when it was there already (a replay).</summary>
    bool TryAdd(ReadOnlySpan<byte> salt);
}
