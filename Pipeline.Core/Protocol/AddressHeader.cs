using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>The Shadowsocks address header, <c>ATYP | ADDR | PORT</c> (the tail of a SOCKS5 request).</summary>
/// <remarks>
/// <code>
/// +------+----------------------------------+----------+
/// | ATYP | ADDR                             | PORT     |
/// +------+----------------------------------+----------+
/// |  1   | 0x01: IPv4, 4 bytes              | 2, big-  |
/// |      | 0x03: LEN(1, 1..255) | NAME(LEN) | endian   |
/// |      | 0x04: IPv6, 16 bytes             |          |
/// +------+----------------------------------+----------+
/// </code>
/// ATYP is compared exactly (no masking of high bits). The domain name is decoded as UTF-8 (invalid
/// sequences become U+FFFD; decoding never throws) and written back as UTF-8.
/// </remarks>
internal static class AddressHeader
{
    /// <summary>The largest header: ATYP, a 255-byte domain with its length byte, and the port.</summary>
    public const int MaxSize = 1 + 1 + 255 + 2;

    /// <summary>ATYP of an IPv4 address (RFC 1928 § 5).</summary>
    public const byte AtypIPv4 = 0x01;

    /// <summary>ATYP of a domain name (RFC 1928 § 5).</summary>
    public const byte AtypDomain = 0x03;

    /// <summary>ATYP of an IPv6 address (RFC 1928 § 5).</summary>
    public const byte AtypIPv6 = 0x04;

    /// <summary>The longest domain name: its length is one byte.</summary>
    public const int MaxDomainLength = 255;

    private const int PortSize = 2;
    private const int IPv4Size = 4;
    private const int IPv6Size = 16;

    /// <summary>
    /// Reads one header from the start of <paramref name="source"/>. On anything but <see cref="AddressParseStatus.Ok"/>,
    /// <paramref name="address"/> is default and <paramref name="consumed"/> is 0. Never throws.
    /// </summary>
    public static AddressParseStatus TryRead(ReadOnlySpan<byte> source, out ShadowsocksAddress address, out int consumed)
    {
        address = default;
        consumed = 0;
        if (source.IsEmpty)
        {
            return AddressParseStatus.Incomplete;
        }

        int size;
        switch (source[0])
        {
            case AtypIPv4:
                size = 1 + IPv4Size + PortSize;
                if (source.Length < size)
                {
                    return AddressParseStatus.Incomplete;
                }

                address = new ShadowsocksAddress(new IPAddress(source.Slice(1, IPv4Size)), null, ReadPort(source, 1 + IPv4Size));
                break;

            case AtypIPv6:
                size = 1 + IPv6Size + PortSize;
                if (source.Length < size)
                {
                    return AddressParseStatus.Incomplete;
                }

                address = new ShadowsocksAddress(new IPAddress(source.Slice(1, IPv6Size)), null, ReadPort(source, 1 + IPv6Size));
                break;

            case AtypDomain:
                if (source.Length < 2)
                {
                    return AddressParseStatus.Incomplete;
                }

                var length = source[1];
                if (length == 0)
                {
                    return AddressParseStatus.Malformed;
                }

                size = 1 + 1 + length + PortSize;
                if (source.Length < size)
                {
                    return AddressParseStatus.Incomplete;
                }

                // Host names on the wire are ASCII (IDNs travel as punycode); anything else is not a name.
                var name = source.Slice(2, length);
                if (name.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E))
                {
                    return AddressParseStatus.Malformed;
                }

                address = new ShadowsocksAddress(null, Encoding.ASCII.GetString(name), ReadPort(source, 2 + length));
                break;

            default:
                return AddressParseStatus.UnsupportedAddressType;
        }

        consumed = size;
        return AddressParseStatus.Ok;
    }

    /// <summary>
    /// The size of the header at the start of <paramref name="source"/> as its type and length byte give it, without
    /// reading the address; -1 for an unknown type or a domain whose length byte is missing or zero. The header may
    /// still be malformed (<see cref="TryRead"/> says so) or longer than <paramref name="source"/>.
    /// </summary>
    public static int SizeOf(ReadOnlySpan<byte> source) => source.IsEmpty ? -1 : source[0] switch
    {
        AtypIPv4 => 1 + IPv4Size + PortSize,
        AtypIPv6 => 1 + IPv6Size + PortSize,
        AtypDomain when source.Length >= 2 && source[1] != 0 => 1 + 1 + source[1] + PortSize,
        _ => -1,
    };

    /// <summary>The encoded size of <paramref name="address"/>. Throws for a domain over 255 bytes or a non-IP address family.</summary>
    public static int GetSize(in ShadowsocksAddress address)
    {
        if (address.Host is { } host)
        {
            var length = Encoding.UTF8.GetByteCount(host);
            if (length is 0 or > MaxDomainLength)
            {
                throw new ArgumentException($"A domain name must be 1 to {MaxDomainLength} bytes; '{host}' is {length}.", nameof(address));
            }

            return 1 + 1 + length + PortSize;
        }

        return address.Ip?.AddressFamily switch
        {
            AddressFamily.InterNetwork => 1 + IPv4Size + PortSize,
            AddressFamily.InterNetworkV6 => 1 + IPv6Size + PortSize,
            _ => throw new ArgumentException("The address has neither a host name nor an IPv4/IPv6 address.", nameof(address)),
        };
    }

    /// <summary>Writes <paramref name="address"/> at the start of <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Write(in ShadowsocksAddress address, Span<byte> destination)
    {
        var size = GetSize(address);
        if (destination.Length < size)
        {
            throw new ArgumentException($"The destination needs {size} bytes but has {destination.Length}.", nameof(destination));
        }

        int portOffset;
        if (address.Host is { } host)
        {
            destination[0] = AtypDomain;
            var length = Encoding.UTF8.GetBytes(host, destination[2..]);
            destination[1] = (byte)length;
            portOffset = 2 + length;
        }
        else if (address.Ip!.AddressFamily == AddressFamily.InterNetwork)
        {
            destination[0] = AtypIPv4;
            address.Ip.TryWriteBytes(destination.Slice(1, IPv4Size), out _);
            portOffset = 1 + IPv4Size;
        }
        else
        {
            destination[0] = AtypIPv6;
            address.Ip.TryWriteBytes(destination.Slice(1, IPv6Size), out _);
            portOffset = 1 + IPv6Size;
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(portOffset, PortSize), address.Port);
        return size;
    }

    private static ushort ReadPort(ReadOnlySpan<byte> source, int offset) =>
        BinaryPrimitives.ReadUInt16BigEndian(source.Slice(offset, PortSize));
}
