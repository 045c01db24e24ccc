using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// DNS messages in binary (RFC 1035 § 4): A/AAAA queries out, answers in. Parsing never throws on bad input; it
/// returns a <see cref="DnsParseStatus"/>.
/// <code>
/// header   | ID 16 | QR 1 OPCODE 4 AA 1 TC 1 RD 1 | RA 1 Z 3 RCODE 4 | QDCOUNT | ANCOUNT | NSCOUNT | ARCOUNT |
/// question | QNAME (labels, 0-terminated) | QTYPE 16 | QCLASS 16 |
/// answer   | NAME (labels or a 0b11 pointer) | TYPE 16 | CLASS 16 | TTL 32 | RDLENGTH 16 | RDATA |
/// authority| the same; an SOA's RDATA: | MNAME | RNAME | SERIAL 32 | REFRESH 32 | RETRY 32 | EXPIRE 32 | MINIMUM 32 |
/// </code>
/// </summary>
internal static class DnsMessage
{
    public const int HeaderSize = 12;

    /// <summary>The largest answer accepted (TCP answers carry a 16-bit length; UDP ones are at most 65,507).</summary>
    public const int MaxSize = 65_535;

    /// <summary>
    /// The largest answer over UDP to these queries: they carry no EDNS OPT record, so RFC 1035 § 4.2.1's 512 bytes
    /// hold; a longer answer comes truncated (TC) and is asked again over TCP.
    /// </summary>
    public const int MaxUdpSize = 512;

    private const int MaxNameLength = 255;
    private const int MaxPointerJumps = 32;
    private const ushort ClassIn = 1;

    /// <summary>
    /// Writes a recursive query for <paramref name="name"/>; returns its length, or 0 when the name cannot be encoded
    /// (an empty label, one over 63 bytes, a name over 255, or a character outside ASCII: an IDN must come as punycode).
    /// </summary>
    public static int WriteQuery(ushort id, string name, DnsRecordType type, Span<byte> destination)
    {
        if (!Ascii.IsValid(name))
        {
            return 0; // ASCII encoding would send '?' for it, and the answer would be for another name
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination, id);
        destination[2] = 0x01; // RD
        destination[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], 1);
        destination[6..HeaderSize].Clear();
        var offset = HeaderSize;
        foreach (var label in WithoutRootDot(name).Split('.'))
        {
            var bytes = Encoding.ASCII.GetBytes(label);
            if (bytes.Length is 0 or > 63 || offset + 1 + bytes.Length + 5 > destination.Length || offset - HeaderSize + bytes.Length + 2 > MaxNameLength)
            {
                return 0;
            }

            destination[offset++] = (byte)bytes.Length;
            bytes.CopyTo(destination[offset..]);
            offset += bytes.Length;
        }

        destination[offset++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(offset + 2)..], ClassIn);
        return offset + 4;
    }

    /// <summary>
    /// The name without its one final dot, if it has one (a fully qualified "example.test." is "example.test"). One
    /// only: "example.test.." has an empty last label and is no valid name; trimming every dot took it for example.test.
    /// </summary>
    public static string WithoutRootDot(string name) => name.EndsWith('.') ? name[..^1] : name;

    /// <summary>Reads the ID of a message (0 if it is too short to have one).</summary>
    public static ushort ReadId(ReadOnlySpan<byte> message) => message.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(message) : (ushort)0;

    /// <summary>
    /// Parses the answer to the query (<paramref name="id"/>, <paramref name="name"/>, <paramref name="type"/>):
    /// follows the CNAME chain from the asked name within the answer section and collects the addresses of the
    /// asked type at its end, with the smallest TTL seen along the way.
    /// </summary>
    public static DnsParseStatus TryParseAnswer(ReadOnlySpan<byte> message, ushort id, string name, DnsRecordType type, out DnsAnswer answer)
    {
        answer = new DnsAnswer(0, false, [], TimeSpan.Zero);
        if (message.Length > MaxSize)
        {
            return DnsParseStatus.Oversized;
        }

        if (message.Length < HeaderSize)
        {
            return DnsParseStatus.Malformed;
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(message) != id || (message[2] & 0x80) == 0)
        {
            return DnsParseStatus.WrongId;
        }

        var truncated = (message[2] & 0x02) != 0;
        var rcode = message[3] & 0x0F;
        var questions = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        var answers = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        var authorities = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        if (questions != 1)
        {
            return DnsParseStatus.WrongQuestion;
        }

        var offset = HeaderSize;
        var status = ReadName(message, ref offset, out var questionName);
        if (status != DnsParseStatus.Ok)
        {
            return status;
        }

        if (offset + 4 > message.Length)
        {
            return DnsParseStatus.Malformed;
        }

        if (!NamesEqual(questionName, name) || BinaryPrimitives.ReadUInt16BigEndian(message[offset..]) != (ushort)type
            || BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]) != ClassIn)
        {
            return DnsParseStatus.WrongQuestion;
        }

        offset += 4;
        var records = new List<(string Owner, DnsRecordType Type, uint Ttl, int DataOffset, int DataLength)>(answers);
        for (var i = 0; i < answers; i++)
        {
            status = ReadName(message, ref offset, out var owner);
            if (status != DnsParseStatus.Ok)
            {
                return status;
            }

            if (offset + 10 > message.Length)
            {
                return DnsParseStatus.Malformed;
            }

            var recordType = (DnsRecordType)BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            var ttl = Ttl(BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 4)..]));
            var length = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            offset += 10;
            if (offset + length > message.Length)
            {
                return DnsParseStatus.Malformed;
            }

            records.Add((owner, recordType, ttl, offset, length));
            offset += length;
        }

        // Follow the CNAME chain from the asked name (bounded: a chain cannot be longer than the records).
        var current = name.TrimEnd('.');
        var minTtl = uint.MaxValue;
        for (var hop = 0; hop <= records.Count; hop++)
        {
            var cname = records.FindIndex(r => r.Type == DnsRecordType.Cname && NamesEqual(r.Owner, current));
            if (cname < 0)
            {
                break;
            }

            var target = records[cname].DataOffset;
            status = ReadName(message, ref target, out var next);
            if (status != DnsParseStatus.Ok)
            {
                return status;
            }

            minTtl = Math.Min(minTtl, records[cname].Ttl);
            current = next;
        }

        var addresses = new List<IPAddress>();
        foreach (var record in records)
        {
            var size = record.Type switch { DnsRecordType.A => 4, DnsRecordType.Aaaa => 16, _ => -1 };
            if (record.Type != type || !NamesEqual(record.Owner, current))
            {
                continue;
            }

            if (record.DataLength != size)
            {
                return DnsParseStatus.Malformed;
            }

            addresses.Add(new IPAddress(message.Slice(record.DataOffset, record.DataLength)));
            minTtl = Math.Min(minTtl, record.Ttl);
        }

        answer = new DnsAnswer(rcode, truncated, addresses, TimeSpan.FromSeconds(minTtl == uint.MaxValue ? 0 : minTtl), NegativeTtl(message, offset, authorities));
        return DnsParseStatus.Ok;
    }

    /// <summary>RFC 2181 § 8: a TTL is 31 bits; the top bit set means 0.</summary>
    private static uint Ttl(uint value) => value > int.MaxValue ? 0 : value;

    /// <summary>The smallest SOA's RDATA: two names of a byte each at least, then five 32-bit fields.</summary>
    private const int MinSoaLength = 2 + 20;

    /// <summary>
    /// How long a negative answer (NXDOMAIN, or no record of the type) may be cached, from the SOA in the authority
    /// section at <paramref name="offset"/>: the smaller of its TTL and its MINIMUM (RFC 2308 § 5); null without an SOA.
    /// An authority section that does not parse only loses this: the answer stands without it, as before it was read.
    /// </summary>
    private static TimeSpan? NegativeTtl(ReadOnlySpan<byte> message, int offset, int authorities)
    {
        for (var i = 0; i < authorities; i++)
        {
            if (ReadName(message, ref offset, out _) != DnsParseStatus.Ok || offset + 10 > message.Length)
            {
                return null;
            }

            var type = (DnsRecordType)BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            var ttl = Ttl(BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 4)..]));
            var length = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            offset += 10;
            if (offset + length > message.Length)
            {
                return null;
            }

            if (type == DnsRecordType.Soa && length >= MinSoaLength)
            {
                var minimum = Ttl(BinaryPrimitives.ReadUInt32BigEndian(message[(offset + length - 4)..]));
                return TimeSpan.FromSeconds(Math.Min(ttl, minimum));
            }

            offset += length;
        }

        return null;
    }

    /// <summary>Reads a possibly compressed name at <paramref name="offset"/>, leaving it after the name's bytes in place.</summary>
    private static DnsParseStatus ReadName(ReadOnlySpan<byte> message, ref int offset, out string name)
    {
        name = string.Empty;
        var builder = new StringBuilder();
        var position = offset;
        var jumped = false;
        var jumps = 0;
        while (true)
        {
            if (position >= message.Length)
            {
                return DnsParseStatus.Malformed;
            }

            var length = message[position];
            if ((length & 0xC0) == 0xC0)
            {
                if (position + 1 >= message.Length)
                {
                    return DnsParseStatus.Malformed;
                }

                var target = ((length & 0x3F) << 8) | message[position + 1];
                if (++jumps > MaxPointerJumps || target >= position)
                {
                    return DnsParseStatus.CompressionLoop; // pointers must go backwards, which also rules out loops
                }

                if (!jumped)
                {
                    offset = position + 2;
                    jumped = true;
                }

                position = target;
                continue;
            }

            if ((length & 0xC0) != 0)
            {
                return DnsParseStatus.Malformed;
            }

            if (length == 0)
            {
                if (!jumped)
                {
                    offset = position + 1;
                }

                name = builder.ToString();
                return DnsParseStatus.Ok;
            }

            if (position + 1 + length > message.Length || builder.Length + length + 1 > MaxNameLength)
            {
                return DnsParseStatus.Malformed;
            }

            if (builder.Length > 0)
            {
                builder.Append('.');
            }

            builder.Append(Encoding.ASCII.GetString(message.Slice(position + 1, length)));
            position += 1 + length;
        }
    }

    private static bool NamesEqual(string a, string b) =>
        string.Equals(a.TrimEnd('.'), b.TrimEnd('.'), StringComparison.OrdinalIgnoreCase);
}
