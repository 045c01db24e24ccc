using System.Net;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// One datagram on its way through the UDP stages, in a buffer from <see cref="ChunkPool"/> (which the idle memory trim empties). The data sits at <see cref="Offset"/> with
/// <see cref="Headroom"/> bytes free in front, so stages add headers, salts and SOCKS5 fields in place, and
/// <see cref="Tailroom"/> free behind for an AEAD tag. Ownership moves with the datagram: whichever stage drops it
/// or sends it last calls <see cref="Return"/>; a stage whose work throws has it dropped by <see cref="UdpStageGuard"/>.
/// </summary>
internal sealed class Datagram
{
    /// <summary>
    /// Room in front: the longest address header (259) after the longest prefix a sealed datagram has: a SIP023
    /// client's, separate header (16), up to four identity headers (64) and type, time and padding length (11); rounded up.
    /// </summary>
    public const int Headroom = 384;

    /// <summary>Room behind: one AEAD tag.</summary>
    public const int Tailroom = 16;

    /// <summary>The largest UDP payload over IPv4 (65,535 − 8 UDP − 20 IP); anything larger is dropped.</summary>
    public const int MaxPayload = 65_507;

    private const int BufferSize = Headroom + MaxPayload + 1 + Tailroom;

    private Datagram[]? _alone;

    private Datagram(byte[] buffer)
    {
        Buffer = buffer;
        Offset = Headroom;
    }

    public byte[] Buffer { get; }

    public int Offset { get; set; }

    public int Length { get; set; }

    /// <summary>The client this datagram came from or goes back to (the NAT key).</summary>
    public IPEndPoint Client { get; set; } = null!;

    /// <summary>Server: where the datagram goes (from its address header); on the way back, where it came from.</summary>
    public ShadowsocksAddress Target { get; set; }

    /// <summary>Server: <see cref="Target"/> resolved.</summary>
    public IPEndPoint? Resolved { get; set; }

    /// <summary>A 2022 server: the client session this datagram came in, or its reply goes back in (its NAT key).</summary>
    public Core.Protocol.Udp2022ServerSession? Session { get; set; }

    public Span<byte> Data => Buffer.AsSpan(Offset, Length);

    /// <summary>
    /// This datagram as a one-element array, made once: what a stage returns to pass it on. A transform-many block
    /// takes an array's items at once, under one lock; any other sequence (<c>[datagram]</c> as an
    /// <c>IEnumerable</c> is a compiler-made one-element list) it enumerates item by item, and each stage allocated one.
    /// </summary>
    public Datagram[] Alone => _alone ??= [this];

    /// <summary>Where a receive writes: one byte more than the largest legal payload, so oversize shows as length.</summary>
    public static Memory<byte> ReceiveArea(byte[] buffer) => buffer.AsMemory(Headroom, MaxPayload + 1);

    public static byte[] RentBuffer() => ChunkPool.Shared.Rent(BufferSize);

    public static Datagram Wrap(byte[] buffer, int length, IPEndPoint client) => new(buffer) { Length = length, Client = client };

    /// <summary>The buffer went back to the pool (<see cref="Return"/>): nothing may touch it now.</summary>
    public bool Returned { get; private set; }

    /// <summary>
    /// Gives the buffer back to the pool, once: a second call does nothing (the pool given one buffer twice would hand
    /// it to two datagrams at once). A datagram belongs to one stage at a time, so the flag needs no lock.
    /// </summary>
    public void Return()
    {
        if (Returned)
        {
            return;
        }

        Returned = true;
        ChunkPool.Shared.Return(Buffer);
    }
}
