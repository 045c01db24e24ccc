namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>The record types the resolver asks for or follows (RFC 1035, RFC 3596).</summary>
internal enum DnsRecordType : ushort
{
    A = 1,
    Cname = 5,
    Aaaa = 28,
}
