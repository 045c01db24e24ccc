using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Socks5Trim;

/// <summary>
/// Shared, connection-level: the SOCKS5 greeting and request (RFC 1928), trimmed to the Shadowsocks address header
/// (the request's last three fields). Answers what it can answer itself: 0xFF when no-auth is not offered (or the
/// greeting is not SOCKS5; a SOCKS4 request gets SOCKS4's rejection),
/// 7 for BIND, UDP ASSOCIATE when UDP is off, CONNECT when TCP is off (a local with <c>-U</c>, as shadowsocks-rust's), or an
/// unknown command, 8 for an unknown address type, 1 for a malformed request.
/// The success reply is sent later, once the server is connected.
/// <para>
/// With SOCKS5 users (<c>--socks5-auth</c>, <see cref="Socks5Users"/>) the greeting must offer username/password
/// (method 2), which is chosen at once (0xFF otherwise, whatever else it offers), and RFC 1929's login comes between the
/// greeting and the request: a wrong user name or password, or a malformed login (another version, a length of 0, a
/// client that closes halfway), gets STATUS 1 and the close; a right one STATUS 0, and the request is read as without
/// users. The login runs within the handshake timeout, as the rest of the handshake.
/// </para>
/// <para>
/// It never waits for the client: it takes the bytes that are there (a session comes here once
/// <see cref="WaitForBytesStage"/> has seen some), and a handshake still incomplete when they run out leaves with its
/// <see cref="TcpSession.PendingHandshake"/> for another wait, so a slot here is held only while there are bytes to
/// work on. The handshake timeout runs from the accept, across those waits.
/// </para>
/// </summary>
internal static class Socks5HandshakeStage
{
    /// <summary>Greeting (2 + 255 methods), login (RFC 1929, 513) and request (4 + 1 + 255 + 2) together: anything longer is not SOCKS5.</summary>
    private const int MaxHandshakeBytes = 257 + Socks5Codec.MaxUsernamePasswordSize + 262;

    public const string Name = "socks5.handshake";

    /// <summary>The greeting's answer: version 5, no authentication. Never written to.</summary>
    private static readonly byte[] s_methodSelection = [5, Socks5Codec.NoAuthentication];

    /// <summary>The greeting's answer with SOCKS5 users: version 5, username/password (RFC 1929). Never written to.</summary>
    private static readonly byte[] s_usernamePasswordSelection = [5, Socks5Codec.UsernamePassword];

    /// <summary>The login's answers (RFC 1929: VER 1, STATUS). Never written to.</summary>
    private static readonly byte[] s_loggedIn = [Socks5Codec.UsernamePasswordVersion, Socks5Codec.UsernamePasswordSucceeded];

    private static readonly byte[] s_loginFailed = [Socks5Codec.UsernamePasswordVersion, Socks5Codec.UsernamePasswordFailed];

    /// <summary>The <see cref="PipelineTelemetry.Socks5AuthenticationFailures"/> reasons.</summary>
    public const string WrongCredentials = "wrong user name or password";

    public const string NoUsernamePasswordOffered = "no username/password offered";

    public const string MalformedLogin = "malformed login";

    /// <summary>The most of a user name a failure's reason repeats.</summary>
    private const int MaxNameShown = 64;

    /// <summary>A SOCKS4 (or 4a) request's first byte: not served, but answered in its own terms.</summary>
    private const byte Socks4Version = 4;

    /// <summary>
    /// The answer to a SOCKS4 request: "request rejected or failed" (CD 91), in the 8-byte reply a SOCKS4 client reads
    /// (SOCKS5's 2-byte "no acceptable methods" reads there as a proxy that closed mid-reply). Never written to.
    /// <code>
    /// +----+----+---------+--------+
    /// | VN | CD | DSTPORT | DSTIP  |
    /// +----+----+---------+--------+
    /// | 0  | 91 |    0    |   0    |
    /// +----+----+---------+--------+
    ///   1    1      2         4
    /// </code>
    /// </summary>
    private static readonly byte[] s_socks4Rejected = [0, 91, 0, 0, 0, 0, 0, 0];

    /// <param name="udpAssociate">UDP ASSOCIATE is served (<c>-u</c>, <c>-U</c>).</param>
    /// <param name="connect">CONNECT is served (not with <c>-U</c>: the TCP side is there only for UDP ASSOCIATE).</param>
    /// <param name="users">The SOCKS5 users a client must log in as (<c>--socks5-auth</c>); null: no login.</param>
    public static TransformBlock<TcpSession, TcpSession> Create(
        StageOptions options, TimeSpan timeout, TimeProvider timeProvider, bool udpAssociate = false, bool connect = true, Socks5Users? users = null) =>
        new(StageGuard.Isolate(Name, async session =>
        {
            // One span per handshake, not per piece: a pass that ends waiting for more bytes has none (the waits make one
            // of their own), and the one that ends the handshake starts its span when the handshake started.
            var started = session.PendingHandshake?.Started ?? DateTime.UtcNow;
            var progress = session.PendingHandshake ?? new Socks5Progress { Started = started };
            session.PendingHandshake = null;
            var buffer = Chunk.RentBuffer(MaxHandshakeBytes);
            string? reason;
            try
            {
                // The handshake timeout runs from the accept, across the waits for more bytes (WaitForBytesStage).
                var left = session.LeftOf(timeout, timeProvider);
                if (left <= TimeSpan.Zero)
                {
                    throw new OperationCanceledException();
                }

                using var deadline = SocketReads.Deadline(left, timeProvider, session.Cancellation.Token);
                reason = await RunAsync(session, progress, buffer, udpAssociate, connect, users, deadline.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                reason = e is OperationCanceledException ? "socks5 handshake timed out" : $"socks5 handshake: {e.Message}";
            }
            finally
            {
                new Chunk(buffer, 0).Return();
            }

            if (reason is null && session.PendingHandshake is not null)
            {
                return session;
            }

            WaitForBytesStage.EndSpan(session);
            using var span = StageActivity.Start(Name, session, options);
            span?.SetStartTime(started);
            if (reason is not null)
            {
                session.PendingHandshake = null;
                PipelineTelemetry.HandshakeFailures.Add(1);
                span.Fail(reason);
                session.Fail(reason);
            }

            return session;
        }), BlockOptions.Shared(options));

    /// <summary>
    /// Reads the greeting and the request from what is there, answering as it goes. Returns a failure reason, or
    /// null: done, or (<see cref="TcpSession.PendingHandshake"/> set) the bytes ran out before the request was complete.
    /// It never waits for the client: more bytes are waited for outside this stage.
    /// </summary>
    private static async ValueTask<string?> RunAsync(
        TcpSession session, Socks5Progress progress, byte[] buffer, bool udpAssociate, bool connect, Socks5Users? users, CancellationToken cancellationToken)
    {
        var socket = session.Client;
        progress.Received.CopyTo(buffer, 0);
        var filled = progress.Received.Length;

        // Greeting: VER | NMETHODS | METHODS
        while (!progress.GreetingRead)
        {
            var status = Socks5Codec.TryReadGreeting(buffer.AsSpan(0, filled), out var noAuthOffered, out var usernamePasswordOffered, out var consumed);
            if (status == AddressParseStatus.Ok && users is not null)
            {
                if (!usernamePasswordOffered)
                {
                    await TrySendAsync(socket, new byte[] { 5, Socks5Codec.NoAcceptableMethods }, cancellationToken).ConfigureAwait(false);
                    return LoginFailed(NoUsernamePasswordOffered, "socks5: client offers no username/password authentication, which --socks5-auth requires");
                }

                // Answered at once: RFC 1929's client sends its login only once it has the selection.
                await SocketSend.SendAllAsync(socket, s_usernamePasswordSelection, cancellationToken).ConfigureAwait(false);
                progress.GreetingRead = true;
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;
                break;
            }

            if (status == AddressParseStatus.Ok)
            {
                if (!noAuthOffered)
                {
                    await SocketSend.SendAllAsync(socket, new byte[] { 5, Socks5Codec.NoAcceptableMethods }, cancellationToken).ConfigureAwait(false);
                    return "socks5: client offers no acceptable authentication method";
                }

                // Owed until the request is in: a client that pipelined it gets both answers in one segment.
                session.Socks5MethodSelectionPending = true;
                progress.GreetingRead = true;

                // Request: may already be buffered behind the greeting.
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;
                break;
            }

            if (status != AddressParseStatus.Incomplete)
            {
                if (buffer[0] == Socks4Version)
                {
                    await TrySendAsync(socket, s_socks4Rejected, cancellationToken).ConfigureAwait(false);
                    return "socks5: a SOCKS4 request (not supported)";
                }

                await TrySendAsync(socket, new byte[] { 5, Socks5Codec.NoAcceptableMethods }, cancellationToken).ConfigureAwait(false);
                return "socks5: malformed greeting";
            }

            var (fill, total) = Fill(socket, buffer, filled);
            switch (fill)
            {
                case FillResult.Closed:
                    return "socks5: client closed during greeting";
                case FillResult.NothingYet:
                    return WaitForMore(session, progress, buffer, filled);
            }

            filled = total;
        }

        // Login (RFC 1929), with users: VER | ULEN | UNAME | PLEN | PASSWD
        while (users is not null && !progress.LoggedIn)
        {
            var status = Socks5Codec.TryReadUsernamePassword(buffer.AsSpan(0, filled), out var name, out var password, out var consumed);
            if (status == AddressParseStatus.Ok)
            {
                // The connection is marked with its user before the check, with a full fence between (as a reload has
                // between putting in the new list and ending the connections of users taken off): either the check
                // reads the new list, or the reload sees the mark and ends the connection.
                session.User = Encoding.UTF8.GetString(buffer.AsSpan(name));
                Interlocked.MemoryBarrier();
                if (!users.Verify(buffer.AsSpan(name), buffer.AsSpan(password)))
                {
                    session.User = null;
                    var shown = Printable(buffer.AsSpan(name));
                    await TrySendAsync(socket, s_loginFailed, cancellationToken).ConfigureAwait(false);
                    return LoginFailed(WrongCredentials, $"socks5: wrong user name or password (user '{shown}')");
                }

                progress.LoggedIn = true;
                session.Span?.SetTag(TagNames.UserName, session.User);
                await SocketSend.SendAllAsync(socket, s_loggedIn, cancellationToken).ConfigureAwait(false);
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;
                break;
            }

            if (status != AddressParseStatus.Incomplete)
            {
                await TrySendAsync(socket, s_loginFailed, cancellationToken).ConfigureAwait(false);
                return LoginFailed(MalformedLogin, "socks5: malformed login (RFC 1929: version 1, then a user name and a password of 1 to 255 bytes each)");
            }

            var (fill, total) = Fill(socket, buffer, filled);
            switch (fill)
            {
                case FillResult.Closed:
                    await TrySendAsync(socket, s_loginFailed, cancellationToken).ConfigureAwait(false);
                    return LoginFailed(MalformedLogin, "socks5: client closed during its login");
                case FillResult.NothingYet:
                    return WaitForMore(session, progress, buffer, filled);
            }

            filled = total;
        }

        // Request: VER | CMD | RSV | ATYP | ADDR | PORT
        while (true)
        {
            var status = Socks5Codec.TryReadRequest(buffer.AsSpan(0, filled), out var command, out var address, out var consumed);
            switch (status)
            {
                case AddressParseStatus.Ok when command == Socks5Command.Connect && connect:
                    session.Destination = address;
                    session.Socks5ReplyPending = true;
                    session.Span?.SetTag(TagNames.ServerAddress, address.Host ?? address.Ip!.ToString());
                    session.Span?.SetTag(TagNames.ServerPort, (int)address.Port);
                    if (filled > consumed)
                    {
                        session.InitialPayload = Chunk.CopyOf(buffer.AsSpan(consumed, filled - consumed));
                    }

                    return null;
                case AddressParseStatus.Ok when command == Socks5Command.UdpAssociate && udpAssociate:
                    // The address is where the client will send from (often 0.0.0.0:0); its port picks the association
                    // a client endpoint belongs to (UdpAssociations); its address is taken as well as the connection's
                    // (a client on several addresses), never instead of it (the client may be behind NAT).
                    session.UdpAssociate = true;
                    session.UdpAssociatePort = address.Port;
                    session.UdpAssociateAddress = address.Ip;
                    session.Socks5ReplyPending = true;
                    return null;
                case AddressParseStatus.Ok when command == Socks5Command.Connect:
                    await ReplyAsync(session, Socks5Reply.CommandNotSupported, cancellationToken).ConfigureAwait(false);
                    return "socks5: CONNECT not served: UDP only (-U, mode udp_only)";
                case AddressParseStatus.Ok:
                    await ReplyAsync(session, Socks5Reply.CommandNotSupported, cancellationToken).ConfigureAwait(false);
                    return $"socks5: command {(byte)command} not supported";
                case AddressParseStatus.UnsupportedAddressType:
                    await ReplyAsync(session, Socks5Reply.AddressTypeNotSupported, cancellationToken).ConfigureAwait(false);
                    return "socks5: address type not supported";
                case AddressParseStatus.Malformed:
                    await ReplyAsync(session, Socks5Reply.GeneralFailure, cancellationToken).ConfigureAwait(false);
                    return "socks5: malformed request";
            }

            if (session.Socks5MethodSelectionPending)
            {
                // The request is not all here: the client may be waiting for the selection before it sends the rest.
                session.Socks5MethodSelectionPending = false;
                await SocketSend.SendAllAsync(socket, s_methodSelection, cancellationToken).ConfigureAwait(false);
            }

            var (fill, total) = Fill(socket, buffer, filled);
            switch (fill)
            {
                case FillResult.Closed:
                    return "socks5: client closed during request";
                case FillResult.NothingYet:
                    return WaitForMore(session, progress, buffer, filled);
            }

            filled = total;
        }
    }

    /// <summary>Counts a refused login by <paramref name="kind"/> (its metric's reason) and returns the connection's failure <paramref name="reason"/>.</summary>
    private static string LoginFailed(string kind, string reason)
    {
        PipelineTelemetry.Socks5AuthenticationFailures.Add(1, new KeyValuePair<string, object?>(TagNames.Reason, kind));
        return reason;
    }

    /// <summary>
    /// A user name from the wire as a log line may show it: UTF-8, at most <see cref="MaxNameShown"/> characters, and
    /// '?' for each character that would not show as itself: controls, and the invisible format characters (bidi
    /// overrides that reorder the rest of the line, zero-width ones) and line and paragraph separators.
    /// </summary>
    internal static string Printable(ReadOnlySpan<byte> name)
    {
        var text = Encoding.UTF8.GetString(name);
        var shown = string.Create(Math.Min(text.Length, MaxNameShown), text, static (span, t) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = CharUnicodeInfo.GetUnicodeCategory(t[i]) is UnicodeCategory.Control or UnicodeCategory.Format
                    or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator ? '?' : t[i];
            }
        });
        return shown.Length < text.Length ? $"{shown}..." : shown;
    }

    /// <summary>Keeps what there is on the session, for the wait for more bytes.</summary>
    private static string? WaitForMore(TcpSession session, Socks5Progress progress, byte[] buffer, int filled)
    {
        progress.Received = buffer.AsSpan(0, filled).ToArray();
        session.PendingHandshake = progress;
        return null;
    }

    /// <summary>Sends a failure reply with no bound address; a client that is gone meanwhile is not an error.</summary>
    public static ValueTask ReplyAsync(TcpSession session, Socks5Reply reply, CancellationToken cancellationToken) =>
        TrySendAsync(session.Client, ReplyBytes(session, reply, null), cancellationToken);

    /// <summary>Sends the request's reply (<paramref name="bound"/>: BND.ADDR and BND.PORT; none: 0.0.0.0:0).</summary>
    public static ValueTask SendReplyAsync(TcpSession session, Socks5Reply reply, ShadowsocksAddress? bound, CancellationToken cancellationToken) =>
        SocketSend.SendAllAsync(session.Client, ReplyBytes(session, reply, bound), cancellationToken);

    /// <summary>
    /// The request's reply, preceded by the greeting's method selection while that is still owed
    /// (<see cref="TcpSession.Socks5MethodSelectionPending"/>); the session owes neither afterwards.
    /// </summary>
    private static ReadOnlyMemory<byte> ReplyBytes(TcpSession session, Socks5Reply reply, ShadowsocksAddress? bound)
    {
        var bytes = new byte[s_methodSelection.Length + Socks5Codec.MaxReplySize];
        var length = 0;
        if (session.Socks5MethodSelectionPending)
        {
            session.Socks5MethodSelectionPending = false;
            s_methodSelection.CopyTo(bytes, 0);
            length = s_methodSelection.Length;
        }

        length += Socks5Codec.WriteReply(reply, bound, bytes.AsSpan(length));
        session.Socks5ReplyPending = false;
        return bytes.AsMemory(0, length);
    }

    private enum FillResult
    {
        More,
        NothingYet,
        Closed,
    }

    /// <summary>
    /// A non-blocking receive after the <paramref name="filled"/> bytes: more bytes, none yet, or the end (the client
    /// closed, or sent more than a greeting and a request can take). Other errors throw.
    /// </summary>
    private static (FillResult Result, int Total) Fill(Socket socket, byte[] buffer, int filled)
    {
        if (filled == MaxHandshakeBytes)
        {
            return (FillResult.Closed, filled);
        }

        SocketIo.NonBlocking(socket);
        if (!SocketIo.TryReceive(socket, buffer.AsSpan(filled, MaxHandshakeBytes - filled), out var received))
        {
            return (FillResult.NothingYet, filled);
        }

        return received == 0 ? (FillResult.Closed, filled) : (FillResult.More, filled + received);
    }

    private static async ValueTask TrySendAsync(Socket socket, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        try
        {
            await SocketSend.SendAllAsync(socket, bytes, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The client is gone; there is nobody to answer.
        }
    }
}
