namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>The record types the resolver asks for or follows (RFC 1035, RFC 3596), and the SOA whose TTLs bound a negative answer's (RFC 2308).</summary>
internal enum DnsRecordType : ushort
{
    A = 1,
    Cname = 5,
    Soa = 6,
    Aaaa = 28,
}
