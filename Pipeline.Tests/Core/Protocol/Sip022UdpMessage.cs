using System.Buffers.Binary;
using System.Net;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// One SIP022 UDP packet as <see cref="Sip022UdpReference"/> opened it: every header field as it was on the wire, so a
/// test decides what to accept (type, timestamp window, session IDs, packet IDs).
/// </summary>
/// <param name="SessionId">The sender's session ID (8 bytes, read big-endian: the client's, or the server's own).</param>
/// <param name="PacketId">The sender's packet ID (u64 BE).</param>
/// <param name="Type">0 = client to server, 1 = server to client.</param>
/// <param name="Timestamp">Unix seconds (u64 BE).</param>
/// <param name="ClientSessionId">Server-to-client layout only: the client session ID the reply is for.</param>
/// <param name="PaddingLength">The padding length field.</param>
/// <param name="Address">The SOCKS5 address (<c>ATYP | ADDR | PORT</c>), raw.</param>
/// <param name="Payload">What follows the address.</param>
internal sealed record Sip022UdpMessage(
    ulong SessionId, ulong PacketId, byte Type, ulong Timestamp, ulong? ClientSessionId, int PaddingLength, byte[] Address, byte[] Payload)
{
    /// <summary>The address as an endpoint (ATYP 1 or 4), or null for a domain name.</summary>
    public IPEndPoint? EndPoint => Address[0] switch
    {
        1 => new IPEndPoint(new IPAddress(Address.AsSpan(1, 4)), BinaryPrimitives.ReadUInt16BigEndian(Address.AsSpan(5))),
        4 => new IPEndPoint(new IPAddress(Address.AsSpan(1, 16)), BinaryPrimitives.ReadUInt16BigEndian(Address.AsSpan(17))),
        _ => null,
    };

    /// <summary>Seconds between <see cref="Timestamp"/> and now (positive: in the past).</summary>
    public long Age => DateTimeOffset.UtcNow.ToUnixTimeSeconds() - (long)Timestamp;
}
