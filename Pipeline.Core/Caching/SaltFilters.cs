using Shadowsocks.Pipeline.Core.Configuration;

namespace Shadowsocks.Pipeline.Core.Caching;

/// <summary>The replay filter a server's method calls for.</summary>
internal static class SaltFilters
{
    /// <summary>
    /// SIP022 § 3.1.5 keeps salts for 60 s: twice the ±30 s timestamp window. Timestamps are whole seconds and the
    /// window's edge is inclusive, so a request stamped s passes from s − 30 until just before s + 31: up to 61 s
    /// apart. Kept 61 s, so a recording never outlives its salt's memory (at 60 it could, for under a second).
    /// </summary>
    public static readonly TimeSpan Retention2022 = TimeSpan.FromSeconds(61);

    /// <summary>How long a 2022 UDP session is kept after its last packet: <c>udp_timeout</c>, at least <see cref="Retention2022"/>.</summary>
    public static TimeSpan Keep2022(TimeSpan udpTimeout) => udpTimeout > Retention2022 ? udpTimeout : Retention2022;

    /// <summary>
    /// A server's: 2022 methods, the exact salts of the retention (their UDP checks packet IDs instead); others,
    /// ss-libev's ping-pong Bloom filter, one for the process's TCP and UDP relays.
    /// </summary>
    public static ISaltFilter For(RelayOptions options, TimeProvider time) =>
        options.Cipher.Is2022
            ? new RecentSalts(Retention2022, time)
            : new PingPongBloomFilter(options.ReplayFilterCapacity, options.ReplayFilterErrorRate);
}
