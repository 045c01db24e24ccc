using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Socks5Trim;

namespace Shadowsocks.Pipeline.Stages.AddHeader;

/// <summary>
/// Shared, connection-level (local and tunnel): once the server is connected, tells a SOCKS5 client it succeeded,
/// then builds the stream's first plaintext: the address header followed by whatever the client sends within
/// <see cref="FirstDataWait"/>. Sending header and first data together keeps the first packet's length from
/// giving away the header's (a fixed-size first packet is a classic fingerprint).
/// A SOCKS5 client can speak only once told it succeeded, so the local's wait runs from that reply. A tunnel's client
/// may speak from its accept on, so the tunnel's wait runs from the accept, alongside the connect to the server: a
/// client whose server speaks first (SMTP, FTP, SSH) then waits for no more than the longer of the two, not for their
/// sum (ss-tunnel sends the header at once; a server 20 ms or more away costs no wait at all).
/// </summary>
internal static class AddHeaderStage
{
    public const string Name = "add_header";

    /// <summary>How long to wait for the client's first bytes before sending the header alone (server-speaks-first protocols).</summary>
    public static readonly TimeSpan FirstDataWait = TimeSpan.FromMilliseconds(20);

    /// <summary>At most this much first data rides with the header: one AEAD chunk's payload (0x3FFF) less the largest header.</summary>
    private const int MaxFirstData = 0x3FFF - AddressHeader.MaxSize;

    public static TransformBlock<TcpSession, TcpSession> Create(StageOptions options, bool replyToSocks5, TimeProvider timeProvider) =>
        new(StageGuard.Isolate(Name, async session =>
        {
            using var span = StageActivity.Start(Name, session, options);
            try
            {
                if (replyToSocks5)
                {
                    await ReplySucceededAsync(session).ConfigureAwait(false);
                }

                var pending = session.InitialPayload;
                var wait = replyToSocks5 ? FirstDataWait : session.LeftOf(FirstDataWait, timeProvider);
                var readable = pending is null && await WaitForFirstDataAsync(session, wait, timeProvider).ConfigureAwait(false);

                // Rented after the wait: a client that is slow to speak holds no buffer meanwhile.
                var first = Chunk.RentBuffer(AddressHeader.GetSize(session.Destination) + MaxFirstData);
                var filled = AddressHeader.Write(session.Destination, first);
                if (pending is { } early)
                {
                    early.Span.CopyTo(first.AsSpan(filled));
                    filled += early.Length;
                    early.Return();
                    session.InitialPayload = null;
                }
                else if (readable)
                {
                    try
                    {
                        filled += await SocketIo.ReceiveAsync(session.Client, first.AsMemory(filled, MaxFirstData), session.Cancellation.Token).ConfigureAwait(false);
                    }
                    catch
                    {
                        new Chunk(first, 0).Return();
                        throw;
                    }
                }

                session.InitialPayload = new Chunk(first, filled);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                span.Fail(e.Message);
                session.Fail($"add header: {e.Message}");
            }

            return session;
        }), BlockOptions.Shared(options));

    /// <summary>
    /// Tells the SOCKS5 client its CONNECT succeeded, with the address it is connected to on our side: an IPv4 client
    /// of a dual-stack listener (<c>-b ::</c>) gets it as IPv4 (ATYP 1), as it connected, not IPv4-mapped IPv6.
    /// </summary>
    internal static async ValueTask ReplySucceededAsync(TcpSession session)
    {
        var bound = session.Client.LocalEndPoint is IPEndPoint local ? ShadowsocksAddress.FromEndPoint(DualStack.Unmapped(local)) : (ShadowsocksAddress?)null;
        await Socks5HandshakeStage.SendReplyAsync(session, Socks5Reply.Succeeded, bound, session.Cancellation.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether the client's socket turns readable within <paramref name="timeout"/>: bytes, or its end of stream (the
    /// receive then takes none, and the relay's pump finds the end again: a socket at end of stream stays readable), or
    /// an error (the receive throws it). No <c>FIONREAD</c> to tell them apart first: that was one system call per
    /// connection, for the rare client that closes or resets in those 20 ms. A wait already spent (a tunnel whose
    /// connect to the server took longer) only looks whether the client has spoken: one poll, no wait.
    /// </summary>
    private static async ValueTask<bool> WaitForFirstDataAsync(TcpSession session, TimeSpan timeout, TimeProvider timeProvider)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return session.Client.Poll(0, SelectMode.SelectRead);
        }

        using var wait = SocketReads.Deadline(timeout, timeProvider, session.Cancellation.Token);
        try
        {
            await SocketReadiness.ReadableAsync(session.Client, wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!session.Cancellation.IsCancellationRequested)
        {
            return false;
        }

        return true;
    }
}
