namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>A server answered but could not help (SERVFAIL, REFUSED, a broken TCP answer): the retry moves to the next one.</summary>
internal sealed class DnsServerFailureException : Exception
{
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
