namespace Shadowsocks.Pipeline.Core.Caching;

/// <summary>Why an entry left an <see cref="LruCache{TKey, TValue}"/>.</summary>
internal enum EvictionReason
{
    /// <summary>Its time ran out.</summary>
    Expired,

    /// <summary>The cache was full and it was the least recently used.</summary>
    Capacity,

    /// <summary>Removed or replaced by its owner.</summary>
    Removed,

    /// <summary>The cache was disposed.</summary>
    Disposed,
}
