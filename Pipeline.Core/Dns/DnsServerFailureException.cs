namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// A server answered but could not help (SERVFAIL, REFUSED, FORMERR, a broken TCP answer), its TCP port refused the
/// retry of an answer truncated over UDP, or its port is closed: the retry moves to the next one.
/// </summary>
internal sealed class DnsServerFailureException : Exception
{
    /// <summary>
    /// Whether the failure may be remembered for the name (RFC 2308 § 7.1: a server failure, SERVFAIL, and here REFUSED
    /// too) when every server gave one. False otherwise: FORMERR (that server could not parse the query), NOTIMP, a
    /// broken TCP answer, a refused TCP retry say nothing about the name (c-ares caches only NOERROR and NXDOMAIN answers).
    /// </summary>
    public bool Cacheable { get; init; }

    public DnsServerFailureException()
        : base("the name server could not answer")
    {
    }

    public DnsServerFailureException(string message)
        : base(message)
    {
    }

    public DnsServerFailureException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
