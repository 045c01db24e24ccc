using Shadowsocks.Pipeline.Core.Configuration;

namespace Shadowsocks.Pipeline.Core.Caching;

/// <summary>The replay filter a server's method calls for.</summary>
internal static class SaltFilters
{
    /// <summary>SIP022 § 3.1.4: salts are kept for 60 s (twice the timestamp window).</summary>
    public static readonly TimeSpan Retention2022 = TimeSpan.FromSeconds(60);

    /// <summary>2022 methods: the exact salts of the last minute; others: ss-libev's ping-pong Bloom filter.</summary>
    public static ISaltFilter For(RelayOptions options, TimeProvider time) =>
        options.Cipher.Is2022
            ? new RecentSalts(Retention2022, time)
            : new PingPongBloomFilter(options.ReplayFilterCapacity, options.ReplayFilterErrorRate);
}
