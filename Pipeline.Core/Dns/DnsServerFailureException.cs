namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// A server answered but could not help (SERVFAIL, REFUSED, FORMERR, a broken or cut-off TCP answer), its TCP port
/// refused the retry of an answer truncated over UDP, or its port is closed: the retry moves to the next one.
/// </summary>
internal sealed class DnsServerFailureException : Exception
{
    /// <summary>
    /// Whether the failure may be remembered for the name (RFC 2308 § 7.1: a server failure, SERVFAIL, and here REFUSED
    /// too) when every server gave one. False otherwise: FORMERR (that server could not parse the query), NOTIMP, a
    /// broken or cut-off TCP answer, a refused TCP retry say nothing about the name (c-ares caches only NOERROR and NXDOMAIN answers).
    /// </summary>
    public bool Cacheable { get; init; }

    /// <summary>
    /// What the server did, without its address ("SERVFAIL", "TCP connection refused"): how the failure is said beside
    /// the other family's, from the same server (<see cref="Exception.Message"/> names the server).
    /// </summary>
    public string Failure { get; }

    public DnsServerFailureException()
        : base("the name server could not answer")
    {
        Failure = Message;
    }

    public DnsServerFailureException(string message)
        : base(message)
    {
        Failure = message;
    }

    public DnsServerFailureException(string message, Exception inner)
        : base(message, inner)
    {
        Failure = message;
    }

    /// <param name="failure">What the server did, without its address.</param>
    /// <param name="message">The same, with the server's address.</param>
    /// <param name="inner">The socket error behind it, if any.</param>
    public DnsServerFailureException(string failure, string message, Exception? inner)
        : base(message, inner)
    {
        Failure = failure;
    }
}
