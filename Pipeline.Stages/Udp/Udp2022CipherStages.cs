using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// The cipher stages of the SIP022 UDP relays, in place in a datagram's buffer, like <see cref="UdpCipherStages"/>.
/// A 2022 packet belongs to a session (client: one per client address, its session ID and packet counter; server: one
/// per client session ID, its replay window and the server's own session for the replies, and the NAT entry's key),
/// kept in an LRU table with the NAT table's size and a timeout of at least 61 s. A packet that fails to open, is replayed or belongs to a session that
/// has gone is dropped and counted; nothing else is affected.
/// </summary>
internal static class Udp2022CipherStages
{
    /// <summary>Local and tunnel, outbound: seals the client's payload in its session (made on its first datagram).</summary>
    public static TransformManyBlock<Datagram, Datagram> SealFromClient(
        StageOptions options, TaskScheduler loop, Udp2022ClientSessions side) =>
        new(UdpStageGuard.Isolate("udp.seal", datagram =>
        {
            var (codec, sessions) = (side.Codec, side.ByAddress);
            var session = sessions.GetOrAdd(datagram.Client, side.NewSession);
            var prefix = codec.PrefixSize(fromServer: false);
            var start = datagram.Offset - prefix;
            var length = codec.SealFromClient(session, datagram.Buffer.AsSpan(start, prefix + datagram.Length + Udp2022Codec.TagSize), datagram.Length);
            return Sealed(datagram, start, length);
        }), BlockOptions.OnLoop(options, loop));

    /// <summary>Local and tunnel, back: opens the server's reply in the client's session.</summary>
    public static TransformManyBlock<Datagram, Datagram> OpenAtClient(
        StageOptions options, TaskScheduler loop, Udp2022ClientSessions side) =>
        new(UdpStageGuard.Isolate("udp.open", datagram =>
        {
            var (codec, sessions) = (side.Codec, side.ByAddress);
            if (!sessions.TryGet(datagram.Client, out var session))
            {
                UdpCounters.Drop(datagram, "2022 session ended");
                return [];
            }

            return Opened(datagram, codec.OpenAtClient(session, datagram.Data, out var offset, out var length), offset, length);
        }), BlockOptions.OnLoop(options, loop));

    /// <summary>
    /// Server, outbound: opens a client's packet in the session its ID names (made on its first packet), and hands the
    /// session on with it: the session is its NAT key, and its replies come back carrying it.
    /// </summary>
    public static TransformManyBlock<Datagram, Datagram> OpenAtServer(StageOptions options, TaskScheduler loop, Udp2022ServerSessions sessions) =>
        new(UdpStageGuard.Isolate("udp.open", datagram =>
        {
            var status = sessions.Codec.OpenAtServer(datagram.Data, sessions.Find, out var session, out var offset, out var length);
            if (status == Udp2022Status.Ok && !sessions.Keep(session!, datagram.Client))
            {
                status = Udp2022Status.Replayed; // a new session for an ID whose session was pushed out for room within the window
            }

            if (status == Udp2022Status.Ok)
            {
                datagram.Session = session;
            }

            return Opened(datagram, status, offset, length);
        }), BlockOptions.OnLoop(options, loop));

    /// <summary>Server, back: seals a reply in the session of the client it goes to.</summary>
    public static TransformManyBlock<Datagram, Datagram> SealFromServer(StageOptions options, TaskScheduler loop, Udp2022ServerSessions sessions) =>
        new(UdpStageGuard.Isolate("udp.seal", datagram =>
        {
            var codec = sessions.Codec;
            // A session that left the ID table (expired, or pushed out) was disposed as it left: its NAT entry's late
            // replies have no session to go in.
            if (datagram.Session is not { Ended: false } session)
            {
                UdpCounters.Drop(datagram, "2022 session ended");
                return [];
            }

            sessions.ById.TryGet(session.ClientSessionId, out _); // a reply keeps its session alive too

            var prefix = codec.PrefixSize(fromServer: true);
            var start = datagram.Offset - prefix;
            var length = codec.SealFromServer(session, datagram.Buffer.AsSpan(start, prefix + datagram.Length + Udp2022Codec.TagSize), datagram.Length);
            return Sealed(datagram, start, length);
        }), BlockOptions.OnLoop(options, loop));

    private static Datagram[] Sealed(Datagram datagram, int start, int length)
    {
        if (length == 0)
        {
            UdpCounters.Drop(datagram, "2022 session ended");
            return [];
        }

        datagram.Offset = start;
        datagram.Length = length;
        return datagram.Alone;
    }

    private static Datagram[] Opened(Datagram datagram, Udp2022Status status, int offset, int length)
    {
        if (status != Udp2022Status.Ok)
        {
            if (status is Udp2022Status.AuthenticationFailed or Udp2022Status.TooShort)
            {
                PipelineTelemetry.AuthenticationFailures.Add(1, TransportTags.Udp);
            }

            UdpCounters.Drop(datagram, status switch
            {
                Udp2022Status.TooShort or Udp2022Status.AuthenticationFailed => "authentication failed",
                Udp2022Status.Replayed or Udp2022Status.StaleTimestamp => "replayed packet",
                Udp2022Status.SessionEnded => "2022 session ended",
                _ => "invalid 2022 header",
            });
            return [];
        }

        datagram.Offset += offset;
        datagram.Length = length;
        return datagram.Alone;
    }
}
