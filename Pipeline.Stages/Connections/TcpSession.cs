using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// One relayed TCP connection as it moves through the connection-level stages (handshake, resolve, connect)
/// and then through its own data stages. A stage that fails it sets <see cref="FailureReason"/>; the relay then
/// routes it to its reject block instead of the next stage.
/// </summary>
internal sealed class TcpSession : IDisposable
{
    private const int ClientSide = 1;
    private const int RemoteSide = 2;

    private CancellationTokenSource? _ending; // made only when a drain asks for Ended: most sessions never do
    private int _endAsked;
    private int _aborted;
    private int _disposed;
    private int _resetSides;
    private int _brokenSides;
    private int _readsEnded;
    private int _finSent;
    private int _finBeforeBreak;
    private int _awaitingRead;
    private int _clientLeftToDrain;
    private Socket? _closedRemote;

    public TcpSession(Socket client, Activity? span)
    {
        Client = client;
        Span = span;
        ClientEndPoint = client.RemoteEndPoint as IPEndPoint;
    }

    /// <summary>The accepted socket (a SOCKS5 client, a tunnel client, or a Shadowsocks client on the server).</summary>
    public Socket Client { get; }

    public IPEndPoint? ClientEndPoint { get; }

    /// <summary>The outbound socket (to the Shadowsocks server, or to the destination on the server).</summary>
    public Socket? Remote { get; set; }

    /// <summary>Where the client wants to go.</summary>
    public ShadowsocksAddress Destination { get; set; }

    /// <summary>Addresses the destination resolved to (server side).</summary>
    public IPAddress[] ResolvedAddresses { get; set; } = [];

    /// <summary>Plaintext that must go out before anything the pumps read (local: address header and first data; server: data after the header).</summary>
    public Chunk? InitialPayload { get; set; }

    /// <summary>The server-side decryptor, created while reading the header and kept for the rest of the stream.</summary>
    public IStreamDecryptor? Decryptor { get; set; }

    /// <summary>
    /// Server: a header not yet complete, kept while the session waits for more of the client's bytes; <c>null</c> once
    /// the header is read (or before its first bytes).
    /// </summary>
    public ReadHeader.HeaderProgress? PendingHeader { get; set; }

    /// <summary>
    /// Local: a SOCKS5 handshake not yet complete, kept while the session waits for more of the client's bytes;
    /// <c>null</c> once the request is read (or before the first bytes).
    /// </summary>
    public Socks5Trim.Socks5Progress? PendingHandshake { get; set; }

    /// <summary>
    /// While spans are recorded: when the session began to wait for the client's bytes (<see cref="DateTime.UtcNow"/>,
    /// as spans have it), kept across the waits for the rest of a header or handshake that comes in pieces, so that
    /// they make one <c>wait_for_bytes</c> span (<see cref="WaitForBytesStage.EndSpan"/>); default when there is none
    /// to make.
    /// </summary>
    public DateTime WaitStarted { get; set; }

    /// <summary>When the last of those waits saw bytes (the span's end, unless a wait fails).</summary>
    public DateTime WaitEnded { get; set; }

    /// <summary>When the connection was accepted (<see cref="TimeProvider.GetTimestamp"/> of the relay's clock): the local's handshake timeout runs from here.</summary>
    public long AcceptedAt { get; set; }

    /// <summary>
    /// Server: when the address header was read (<see cref="TimeProvider.GetTimestamp"/> of the relay's clock); the
    /// wait for a lookup slot (<see cref="Resolve.ResolveStage"/>) is bounded from here. Zero before.
    /// </summary>
    public long HeaderReadAt { get; set; }

    /// <summary>What is left of <paramref name="timeout"/> counted from the accept (<see cref="AcceptedAt"/>); zero or less when it is spent.</summary>
    public TimeSpan LeftOf(TimeSpan timeout, TimeProvider timeProvider) => timeout - timeProvider.GetElapsedTime(AcceptedAt);

    /// <summary>
    /// A multi-user 2022 server's connection (SIP023): the name of the user its identity header named; a local's with
    /// SOCKS5 users (<c>--socks5-auth</c>): the user its client logged in as.
    /// </summary>
    public string? User { get; set; }

    /// <summary>The root span of this connection (null when nobody listens).</summary>
    public Activity? Span { get; }

    /// <summary>Cancelled when the connection is torn down, from any stage or direction.</summary>
    public CancellationTokenSource Cancellation { get; } = new();

    /// <summary>
    /// Fires when the relay ends the connection from outside (<see cref="End"/>: the relay stopping, the user taken
    /// off the list). What ends the drain of a client <see cref="ClientFailedAuthentication"/> left open early: the
    /// connection's own teardown has cancelled <see cref="Cancellation"/> already.
    /// </summary>
    public CancellationToken Ended
    {
        get
        {
            var ending = LazyInitializer.EnsureInitialized(ref _ending);
            if (Volatile.Read(ref _endAsked) != 0)
            {
                ending.Cancel(); // End came before this token was made (it found no source to cancel)
            }

            return ending.Token;
        }
    }

    /// <summary>
    /// Server: the client's stream failed authentication after its header (<see cref="ClientFailedAuthentication"/>),
    /// and the teardown left its socket open, to be drained and then closed by <see cref="Dispose"/>.
    /// </summary>
    public bool ClientLeftToDrain => Volatile.Read(ref _clientLeftToDrain) != 0;

    /// <summary>
    /// Server: the client failed (a bad header, a replay, a stream that failed authentication) and is drained, or is on
    /// its way to the drain (<see cref="DrainOnFailure"/>, <see cref="ClientLeftToDrain"/>): it carries no user's data,
    /// and a graceful stop ends it at once instead of giving it the grace.
    /// </summary>
    public bool Drained => DrainOnFailure || ClientLeftToDrain;

    /// <summary>Called once when the session is disposed (the relay's registry forgets it).</summary>
    public Action<TcpSession>? OnDisposed { get; set; }

    /// <summary>Why the connection cannot go on; null while it can.</summary>
    public string? FailureReason { get; private set; }

    /// <summary>Set when the failure must not be visible to the peer (probe resistance): drain instead of closing.</summary>
    public bool DrainOnFailure { get; private set; }

    public bool IsAlive => FailureReason is null;

    /// <summary>Local: the request was UDP ASSOCIATE; this connection is the association's control connection.</summary>
    public bool UdpAssociate { get; set; }

    /// <summary>Local, UDP ASSOCIATE: the DST.PORT of the request, the port the client says it will send from (0: not said).</summary>
    public ushort UdpAssociatePort { get; set; }

    /// <summary>Local, UDP ASSOCIATE: the DST.ADDR of the request when an IP address, the address the client says it will send from (0.0.0.0 or <c>::</c>: not said).</summary>
    public IPAddress? UdpAssociateAddress { get; set; }

    /// <summary>
    /// Local with an ACL (<c>--acl</c>): the destination is reached directly, not through the server; its data stages
    /// copy the bytes as they are (<see cref="Core.Protocol.PlainStreamCodec"/>).
    /// </summary>
    public bool Direct { get; set; }

    /// <summary>Local: the SOCKS5 client has sent its request and still waits for a reply.</summary>
    public bool Socks5ReplyPending { get; set; }

    /// <summary>
    /// Local: the greeting's method selection (no authentication) is still owed. A client that sent its request right
    /// behind the greeting gets the selection together with the request's reply, in one segment.
    /// </summary>
    public bool Socks5MethodSelectionPending { get; set; }

    /// <summary>Local: the SOCKS5 reply a failure after the handshake should give (general failure when unset).</summary>
    public Socks5Reply FailureReply { get; set; } = Socks5Reply.GeneralFailure;

    /// <summary>
    /// How long a side to be reset may keep its peer's bytes queued without delivering any more of them before the
    /// reset goes anyway (<see cref="ResetAfterDelivery"/>): the relay's idle timeout. Zero resets at once.
    /// </summary>
    public TimeSpan ResetPatience { get; set; }

    /// <summary>The session failed: the first reason given stands, on the session and on its span.</summary>
    public void Fail(string reason, bool drain = false)
    {
        DrainOnFailure |= drain;
        if (FailureReason is null)
        {
            FailureReason = reason;
            Span?.SetStatus(ActivityStatusCode.Error, reason);
        }
    }

    /// <summary>
    /// <paramref name="side"/> (one of this session's sockets) ended abnormally, <paramref name="reason"/> being one of
    /// <see cref="BrokenBy"/>'s: <see cref="MarkBroken"/>, then torn down (<see cref="Abort"/>). A no-op once torn down.
    /// </summary>
    public void Broken(Socket side, string reason, Socket? resetOnly = null)
    {
        MarkBroken(side, reason, resetOnly);
        Abort();
    }

    /// <summary>
    /// Server: the client's stream failed authentication after its header, while the data stages ran. Broken as
    /// <see cref="Broken"/> has it, with the reset toward the destination only, and torn down, except the client's
    /// socket: a prober that replays a recorded connection with bytes changed after its first chunk must see what a
    /// failed header gets (PROTOCOL.md § Probe resistance), no answer and no close before the idle timeout. The socket
    /// is left to a drain (<see cref="ClientLeftToDrain"/>, <see cref="ClientDrain"/>) and closed by <see cref="Dispose"/>.
    /// A no-op once torn down.
    /// </summary>
    public void ClientFailedAuthentication()
    {
        MarkBroken(Client, BrokenBy.AuthenticationFailed, resetOnly: Remote);
        TearDown(keepClient: true);
    }

    /// <summary>
    /// A send to <paramref name="side"/> failed: its peer reset it (or went away). Marked broken as a reset read is
    /// (<see cref="MarkBroken"/>), and ended the same way: what that peer sent before its reset may still be waiting to
    /// be read, so the connection ends when the read of that side ends (<see cref="ReadEnded"/>), and not here unless
    /// that read has ended already. Meanwhile a fault of the direction whose send failed does not end it
    /// (<see cref="Fault"/>); the idle timer still does.
    /// </summary>
    public void SendFailed(Socket side, SocketError error)
    {
        // EPIPE: the peer had closed with a FIN before its reset (in reply to data sent after it); its stream is whole.
        MarkBroken(side, BrokenBy.SendFailed, finFirst: error == SocketError.Shutdown);
        Volatile.Write(ref _awaitingRead, 1);
        Interlocked.MemoryBarrier(); // against ReadEnded's: one of the two sees the other and ends the connection
        if ((Volatile.Read(ref _readsEnded) & SideOf(side)) != 0)
        {
            Abort();
        }
    }

    /// <summary>
    /// The read of <paramref name="side"/> has ended (its pump returned, the chunks it read gone out). If that side
    /// broke (a reset read, or a send to it that failed), the connection ends here, with a reset toward the other
    /// side, and the caller must not half-close: an end of stream read after a failed send is the reset itself (the
    /// send took its error), unless that side closed with a FIN before its reset and <paramref name="endOfStream"/> is
    /// that FIN: it is passed on first (<see cref="HalfClosedAfterBreak"/>). Returns whether it ended.
    /// </summary>
    public bool ReadEnded(Socket side, bool endOfStream = false)
    {
        var bit = SideOf(side);
        Interlocked.Or(ref _readsEnded, bit);
        if ((Volatile.Read(ref _brokenSides) & bit) == 0 || (endOfStream && (Volatile.Read(ref _finBeforeBreak) & bit) != 0))
        {
            return false; // a side that closed with a FIN before its reset: half-closed as usual, then HalfClosedAfterBreak
        }

        Abort();
        return true;
    }

    /// <summary>
    /// After the half-close that passed on <paramref name="side"/>'s FIN: if that side has since broken (a FIN, then a
    /// reset), the connection ends now, with a reset toward the other side after the FIN. Returns whether it ended.
    /// </summary>
    public bool HalfClosedAfterBreak(Socket side)
    {
        if ((Volatile.Read(ref _brokenSides) & SideOf(side)) == 0)
        {
            return false;
        }

        Abort();
        return true;
    }

    /// <summary>
    /// A direction's chain faulted or its pump failed: tears the connection down (the other direction's pump may be
    /// waiting for data), unless a failed send waits for the read of its side to end (<see cref="SendFailed"/>).
    /// </summary>
    public void Fault()
    {
        if (Volatile.Read(ref _awaitingRead) == 0)
        {
            Abort();
        }
    }

    /// <summary>
    /// Decides how the connection ends, without ending it yet (the bytes read before a reset still go out first): it
    /// will close with a reset rather than a FIN toward <paramref name="resetOnly"/>, or toward both sides when null,
    /// whoever closes it (the pump, the idle timer, the relay's stop), so a peer never takes a stream cut off that way
    /// for a complete one (and a reset after a half-close, where a FIN has gone out already, still tells the far side).
    /// A side reset that did not break itself gets what is queued toward it first (<see cref="ResetAfterDelivery"/>).
    /// Counted in <c>pipeline.connections_reset</c> and named on the connection's span, once, and not when the
    /// connection was being torn down already (our own close fails sends too).
    /// </summary>
    public void MarkBroken(Socket side, string reason, Socket? resetOnly = null, bool finFirst = false)
    {
        if (Volatile.Read(ref _aborted) != 0)
        {
            return;
        }

        var bit = SideOf(side);
        if (finFirst && (Volatile.Read(ref _brokenSides) & bit) == 0)
        {
            Interlocked.Or(ref _finBeforeBreak, bit); // before the broken mark: whoever sees that sees this
        }

        if (Interlocked.Or(ref _brokenSides, bit) == 0) // the first side to break: counted and named once
        {
            var name = bit == ClientSide ? "client" : "remote";
            PipelineTelemetry.ConnectionsReset.Add(1, new(TagNames.Side, name), new KeyValuePair<string, object?>(TagNames.Reason, reason));
            Span?.SetTag(TagNames.ResetBy, name);
            Span?.SetStatus(ActivityStatusCode.Error, reason switch
            {
                BrokenBy.SendFailed => $"a send to the {name} failed; reset",
                BrokenBy.AuthenticationFailed => $"the {name}'s stream failed authentication; reset",
                _ => $"reset by the {name}",
            });
        }

        if (resetOnly is null || ReferenceEquals(resetOnly, Client))
        {
            ResetOnClose(Client, ClientSide);
        }

        if (resetOnly is null || !ReferenceEquals(resetOnly, Client))
        {
            ResetOnClose(Remote, RemoteSide);
        }
    }

    /// <summary>
    /// Whether the relay holds bytes it has read for <paramref name="side"/> and not yet sent to it (the data stages set
    /// it; null before they run).
    /// </summary>
    public Func<Socket, bool>? HoldsUndelivered { get; set; }

    /// <summary>
    /// For the idle timer (<see cref="IdleTimer"/>): while bytes wait for a side's peer to take them, in the relay or in
    /// the socket's send queue, the bytes both peers have acknowledged so far. They grow as a slow reader takes data,
    /// while a send to it may not complete, and the pump read nothing, for longer than the timeout (or the pump read
    /// everything, its end included, into a send queue that drains slowly). Null while nothing waits.
    /// </summary>
    public long? DeliveryProgress()
    {
        if (Remote is not { } remote)
        {
            return null;
        }

        return OnTheWayTo(Client) || OnTheWayTo(remote) ? SocketIo.BytesAcked(Client) + SocketIo.BytesAcked(remote) : null;
    }

    /// <summary>
    /// The idle timeout: torn down as usual (a FIN each way), except that when bytes from either side did not all reach
    /// the other (the relay holds some for it, some wait unread in the sending side's socket, or some wait unacknowledged
    /// in the send queue toward it), both sides are reset: the receiver's stream is cut short, and the sender must learn
    /// that what it sent was lost (a FIN toward a client that has half-closed would let its upload look complete). A side
    /// that has reset meanwhile without its pump seeing it (held back by the other side's backpressure, it reads no
    /// more) has its reset passed on. Nothing moved for a whole idle timeout, so a reset here does not wait for delivery
    /// again (<see cref="ResetPatience"/>).
    /// </summary>
    public void IdleTimedOut()
    {
        if (Volatile.Read(ref _aborted) != 0)
        {
            // Torn down already (the timer fired as the data stages ended): nothing to end, and a client kept for its
            // drain (ClientFailedAuthentication) must not be marked for a reset, which its close would then send.
            return;
        }

        ResetPatience = TimeSpan.Zero;
        if (HasReset(Client))
        {
            Broken(Client, BrokenBy.Reset);
        }
        else if (Remote is { } remote && HasReset(remote))
        {
            Broken(remote, BrokenBy.Reset);
        }
        else
        {
            if (Remote is { } other && (Undelivered(other, Client) || Undelivered(Client, other)))
            {
                ResetOnClose(Client, ClientSide);
                ResetOnClose(other, RemoteSide);
            }

            Abort();
        }
    }

    /// <summary>
    /// Whether bytes <paramref name="from"/> sent have not all reached <paramref name="to"/>: some wait unread in
    /// <paramref name="from"/>'s receive queue (the pump toward <paramref name="to"/>, held back by its full send buffer,
    /// reads no more), the relay holds some, or some wait in <paramref name="to"/>'s send queue, not acknowledged.
    /// </summary>
    private bool Undelivered(Socket from, Socket to) => Unread(from) || OnTheWayTo(to);

    /// <summary>Whether bytes for <paramref name="to"/> are on their way: the relay holds some, or some wait in its send queue, not acknowledged.</summary>
    private bool OnTheWayTo(Socket to) => HoldsUndelivered?.Invoke(to) == true || SocketIo.UnsentBytes(to) > 0;

    /// <summary>Whether bytes wait unread in <paramref name="socket"/>'s receive queue (false once it is closed).</summary>
    private static bool Unread(Socket socket)
    {
        try
        {
            return socket.Available > 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>A half-close is about to send <paramref name="side"/> a FIN (after which state CLOSE can be a clean close).</summary>
    public void SendingFin(Socket side) => Interlocked.Or(ref _finSent, SideOf(side));

    /// <summary>
    /// Whether <paramref name="side"/> has been reset by its peer (or timed out): a pending error, or state CLOSE
    /// although no FIN went to it (a FIN from the peer alone leaves CLOSE_WAIT; a send that took the reset's error
    /// leaves no pending error but CLOSE).
    /// </summary>
    public bool HasReset(Socket side) => SocketIo.PendingError(side) > 0 || ClosedWithoutFin(side);

    /// <summary>
    /// State CLOSE although no FIN went to <paramref name="side"/>: reset (an end of stream read there is then the
    /// reset, whose error a send took; a receive would have returned a pending one).
    /// </summary>
    public bool ClosedWithoutFin(Socket side) => (Volatile.Read(ref _finSent) & SideOf(side)) == 0 && SocketIo.IsClosedTcp(side);

    /// <summary>Tears the connection down: cancels everything still running for it and closes both sockets. Idempotent.</summary>
    public void Abort() => TearDown(keepClient: false);

    /// <summary>
    /// The relay ends the connection from outside (stopping, or its user taken off the list): torn down
    /// (<see cref="Abort"/>), and a drain of its client ends too (<see cref="Ended"/>).
    /// </summary>
    public void End()
    {
        try
        {
            Interlocked.Exchange(ref _endAsked, 1); // a full fence: either Ended sees it, or this sees Ended's source
            Volatile.Read(ref _ending)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: over already.
        }

        Abort();
    }

    /// <summary>Abort; with <paramref name="keepClient"/>, the client's socket stays open for a drain (<see cref="ClientFailedAuthentication"/>).</summary>
    private void TearDown(bool keepClient)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        if (keepClient)
        {
            Volatile.Write(ref _clientLeftToDrain, 1); // before the cancellation the data stages end on: the runner reads it after them
            FinOnClose(Client, ClientSide); // a reset marked before (the destination reset first) would end the drain with one
        }

        try
        {
            Cancellation.Cancel();
        }
        catch (AggregateException)
        {
            // A callback failed while tearing down; the sockets are closed below regardless.
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile on another thread (its own Abort found this one under way and left the rest to it):
            // nothing is left to cancel; the sockets are closed below.
        }

        if (!keepClient)
        {
            Close(Client, ClientSide);
        }

        CloseRemote();
    }

    /// <summary>Closes <see cref="Remote"/> once, by whichever of Abort and Dispose gets to it first, the same way.</summary>
    private void CloseRemote()
    {
        if (Remote is { } remote && Interlocked.CompareExchange(ref _closedRemote, remote, null) is null)
        {
            Close(remote, RemoteSide);
        }
    }

    private int SideOf(Socket side) => ReferenceEquals(side, Client) ? ClientSide : RemoteSide;

    /// <summary>
    /// A side to be reset that did not break itself (its own peer reset it, or a send to it failed: nothing queued
    /// toward it will arrive) is reset once its peer has what is queued toward it; any other side is closed now.
    /// </summary>
    private void Close(Socket? socket, int side)
    {
        if (socket is null)
        {
            return;
        }

        if ((Volatile.Read(ref _resetSides) & side) != 0 && (Volatile.Read(ref _brokenSides) & side) == 0)
        {
            ResetAfterDelivery.Shared.Close(socket, ResetPatience);
        }
        else
        {
            socket.Dispose();
        }
    }

    /// <summary>Undoes <see cref="ResetOnClose"/>: the socket's close sends a FIN again.</summary>
    private void FinOnClose(Socket socket, int side)
    {
        try
        {
            socket.LingerState = new LingerOption(false, 0);
            Interlocked.And(ref _resetSides, ~side);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Closed already: nothing to close with a FIN.
        }
    }

    private void ResetOnClose(Socket? socket, int side)
    {
        if (socket is null)
        {
            return;
        }

        try
        {
            socket.LingerState = new LingerOption(true, 0);
            Interlocked.Or(ref _resetSides, side);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Closed already: nothing to reset.
        }
    }

    /// <summary>Aborts (if not yet) and releases what the session owns. Call once the stages are done with it.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Abort();
        CloseRemote(); // set after an Abort (a connect that finished as the relay was stopping), or an Abort under way on another thread
        if (ClientLeftToDrain)
        {
            Close(Client, ClientSide); // its drain is over
        }

        OnDisposed?.Invoke(this);
        Decryptor?.Dispose();
        InitialPayload?.Return();
        InitialPayload = null;
        Cancellation.Dispose();
        _ending?.Dispose();
        Span?.Dispose();
    }
}
