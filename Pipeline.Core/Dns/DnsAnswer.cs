using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// A parsed answer: the response code, the TC bit, and the addresses for the asked name after following CNAMEs; for
/// a negative answer, how long the zone says to remember it (<see cref="NegativeTtl"/>).
/// </summary>
internal sealed record DnsAnswer(int ResponseCode, bool Truncated, IReadOnlyList<IPAddress> Addresses, TimeSpan Ttl, TimeSpan? NegativeTtl = null)
{
    public const int NoError = 0;
    public const int NameError = 3;

    public bool IsNameError => ResponseCode == NameError;

    /// <summary>A response code's name (RFC 1035 § 4.1.1, RFC 2136 § 2.2) for a log line.</summary>
    public static string ResponseCodeName(int code) => code switch
    {
        1 => "FORMERR",
        2 => "SERVFAIL",
        NameError => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => $"RCODE {code}",
    };
}
