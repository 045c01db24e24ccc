using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// The header work on a datagram, all in place in its buffer:
/// <code>
/// SOCKS5 UDP request   | RSV 2 | FRAG 1 | ATYP | DST.ADDR | DST.PORT | DATA |
/// Shadowsocks payload          (trim 3) | ATYP | DST.ADDR | DST.PORT | DATA |
/// </code>
/// </summary>
internal static class UdpHeaderStages
{
    /// <summary>Local, outbound: drops RSV and FRAG (a fragment, FRAG ≠ 0, is dropped, as RFC 1928 allows) after checking the address.</summary>
    public static TransformManyBlock<Datagram, Datagram> TrimSocks5(StageOptions options, TaskScheduler loop) =>
        new(UdpStageGuard.Isolate("udp.trim_socks5", datagram =>
        {
            var status = Socks5Codec.TryReadUdpHeader(datagram.Data, out var fragment, out _, out _);
            if (status != AddressParseStatus.Ok)
            {
                UdpCounters.Drop(datagram, status == AddressParseStatus.UnsupportedAddressType ? "unknown address type" : "malformed socks5 header");
                return [];
            }

            if (fragment != 0)
            {
                UdpCounters.Drop(datagram, "socks5 fragment");
                return [];
            }

            datagram.Offset += 3;
            datagram.Length -= 3;
            return datagram.Alone;
        }), BlockOptions.OnLoop(options, loop));

    /// <summary>
    /// Local, back: the decrypted payload (address header and data) gets RSV and FRAG = 0 in front. A reply whose
    /// address header does not parse is dropped, as ss-local drops it: the SOCKS5 client would get a header it cannot read.
    /// </summary>
    public static TransformManyBlock<Datagram, Datagram> AddSocks5(StageOptions options, TaskScheduler loop) =>
        new(UdpStageGuard.Isolate("udp.add_socks5", datagram =>
        {
            if (!TryReadAddress(datagram, fromServer: true, out _, out _))
            {
                return [];
            }

            datagram.Offset -= 3;
            datagram.Length += 3;
            datagram.Data[..3].Clear();
            return datagram.Alone;
        }), BlockOptions.OnLoop(options, loop));

    /// <summary>Server, outbound: reads the address header into <see cref="Datagram.Target"/> and leaves only the data.</summary>
    public static TransformManyBlock<Datagram, Datagram> ReadHeader(StageOptions options, TaskScheduler loop) =>
        new(UdpStageGuard.Isolate("udp.read_header", datagram =>
        {
            if (!TryStrip(datagram))
            {
                return [];
            }

            return datagram.Alone;
        }), BlockOptions.OnLoop(options, loop));

    /// <summary>Tunnel, back: the server's reply header (where it came from) is dropped; the client wants the data.</summary>
    public static TransformManyBlock<Datagram, Datagram> StripHeader(StageOptions options, TaskScheduler loop) => ReadHeader(options, loop);

    /// <summary>
    /// Server, back (the reply's source) and tunnel, outbound (the fixed destination): writes <see cref="Datagram.Target"/>
    /// in front. (A transform-many block, as the others: a datagram whose work threw goes on as nothing.)
    /// </summary>
    public static TransformManyBlock<Datagram, Datagram> AddHeader(StageOptions options, TaskScheduler loop, ShadowsocksAddress? fixedTarget = null) =>
        new(UdpStageGuard.Isolate("udp.add_header", datagram =>
        {
            var target = fixedTarget ?? datagram.Target;
            var size = AddressHeader.GetSize(target);
            datagram.Offset -= size;
            datagram.Length += size;
            AddressHeader.Write(target, datagram.Buffer.AsSpan(datagram.Offset, size));
            return datagram.Alone;
        }), BlockOptions.OnLoop(options, loop));

    private static bool TryStrip(Datagram datagram)
    {
        if (!TryReadAddress(datagram, fromServer: false, out var address, out var consumed))
        {
            return false;
        }

        datagram.Target = address;
        datagram.Offset += consumed;
        datagram.Length -= consumed;
        return true;
    }

    /// <summary>
    /// The datagram's Shadowsocks address header; one that does not parse drops the datagram (a reply's, on the local,
    /// <paramref name="fromServer"/>, with a reason that says so).
    /// </summary>
    private static bool TryReadAddress(Datagram datagram, bool fromServer, out ShadowsocksAddress address, out int consumed)
    {
        var status = AddressHeader.TryRead(datagram.Data, out address, out consumed);
        if (status == AddressParseStatus.Ok)
        {
            return true;
        }

        UdpCounters.Drop(datagram, (status == AddressParseStatus.UnsupportedAddressType, fromServer) switch
        {
            (true, true) => "unknown address type from the server",
            (true, false) => "unknown address type",
            (false, true) => "malformed address header from the server",
            (false, false) => "malformed address header",
        });
        return false;
    }
}
