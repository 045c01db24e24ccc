using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>A parsed answer: the response code, the TC bit, and the addresses for the asked name after following CNAMEs.</summary>
internal sealed record DnsAnswer(int ResponseCode, bool Truncated, IReadOnlyList<IPAddress> Addresses, TimeSpan Ttl)
{
    public const int NoError = 0;
    public const int NameError = 3;

    public bool IsNameError => ResponseCode == NameError;
}
