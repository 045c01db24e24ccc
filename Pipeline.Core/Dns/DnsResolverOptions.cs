using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>How the resolver finds names: where to ask, how long to wait, how long to remember.</summary>
internal sealed record DnsResolverOptions
{
    /// <summary>
    /// Name servers in order of preference; null means those of <see cref="ResolvConfPath"/>, whose <c>options
    /// timeout:N attempts:N</c> then set <see cref="AttemptTimeout"/> and <see cref="Attempts"/> (<see cref="ResolvConf.Apply"/>).
    /// </summary>
    public IReadOnlyList<IPEndPoint>? Servers { get; init; }

    public string HostsPath { get; init; } = "/etc/hosts";

    public string ResolvConfPath { get; init; } = "/etc/resolv.conf";

    /// <summary>
    /// The <c>RES_OPTIONS</c> environment variable's value (the host reads it; null: not set): <c>timeout:N
    /// attempts:N</c> over those of <see cref="ResolvConfPath"/>, as glibc applies it. Only with that file's servers
    /// (<see cref="Servers"/> null).
    /// </summary>
    public string? ResOptions { get; init; }

    /// <summary>
    /// How long one query to one server may take before the next attempt (on the next server) the first time round the
    /// servers; each round after waits twice as long (as c-ares does), within <see cref="TotalTimeout"/>.
    /// </summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Attempts in all, cycling through the servers (passing over those that answered SERVFAIL, REFUSED or the like, or
    /// whose port is closed, or to which there is no route).
    /// </summary>
    public int Attempts { get; init; } = 4;

    /// <summary>The deadline of one lookup, all attempts included.</summary>
    public TimeSpan TotalTimeout { get; init; } = TimeSpan.FromSeconds(8);

    /// <summary>Answers are cached for their TTL clamped to [<see cref="MinTtl"/>, <see cref="MaxTtl"/>].</summary>
    public TimeSpan MinTtl { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxTtl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How long a name that does not exist (NXDOMAIN) or has no address is remembered when the answer carries no SOA to
    /// say (RFC 2308 § 5: the SOA's TTL and MINIMUM bound it; with one, that is taken, clamped to
    /// [<see cref="MinTtl"/>, <see cref="MaxNegativeTtl"/>]); also how long a name that cannot be asked is.
    /// </summary>
    public TimeSpan NegativeTtl { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest a negative answer is remembered whatever its zone says (a zone's typo fixed counts within it).</summary>
    public TimeSpan MaxNegativeTtl { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a name is remembered as failed when every server answered that it cannot help (SERVFAIL, REFUSED):
    /// RFC 2308 § 7.1 allows up to 5 min; a few seconds spare a broken server a query per connection yet let its
    /// repair count soon.
    /// </summary>
    public TimeSpan ServerFailureTtl { get; init; } = TimeSpan.FromSeconds(5);

    public int CacheSize { get; init; } = 4096;

    /// <summary>Prefer IPv6 results (<c>-6</c>, <c>ipv6_first</c>).</summary>
    public bool Ipv6First { get; init; }
}
