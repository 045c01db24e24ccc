using System.Buffers.Binary;
using System.Net;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>Reads the <c>sockaddr_in</c> / <c>sockaddr_in6</c> a <c>recvfrom</c> filled in (Linux layout).</summary>
internal static class NativeSocketAddress
{
    /// <summary>Room for the larger of the two: sockaddr_in6.</summary>
    public const int MaxSize = 28;

    private const ushort FamilyV4 = 2;
    private const ushort FamilyV6 = 10;

    /// <summary>The endpoint, with IPv4-mapped IPv6 addresses (a dual-stack socket's IPv4 peers) made plain IPv4; null for another family.</summary>
    public static IPEndPoint? ToEndPoint(ReadOnlySpan<byte> address)
    {
        if (address.Length < 8)
        {
            return null;
        }

        var family = BitConverter.ToUInt16(address);
        var port = BinaryPrimitives.ReadUInt16BigEndian(address[2..]);
        if (family == FamilyV4)
        {
            return new IPEndPoint(new IPAddress(address.Slice(4, 4)), port);
        }

        if (family != FamilyV6 || address.Length < MaxSize)
        {
            return null;
        }

        var v6 = address.Slice(8, 16);
        if (v6[..10].IndexOfAnyExcept((byte)0) < 0 && v6[10] == 0xFF && v6[11] == 0xFF)
        {
            return new IPEndPoint(new IPAddress(v6[12..]), port);
        }

        return new IPEndPoint(new IPAddress(v6, BitConverter.ToUInt32(address[24..])), port);
    }
}
