using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Connect;

/// <summary>Shared, connection-level: opens the outbound socket.</summary>
internal static class ConnectStage
{
    public const string Name = "connect";

    private const int IpProtocolTcp = 6;
    private const int TcpFastOpenConnect = 30;

    /// <summary>
    /// Local and tunnel: connects to a Shadowsocks server through <paramref name="servers"/> (retry, circuit breaker
    /// and failover across several servers, per-attempt timeout). A server given by name is looked up through
    /// <paramref name="serverNames"/> (the program's resolver, whose cache honours the TTL) and its addresses tried in
    /// order; without one, .NET's connect looks the name up on every connection. With <paramref name="fastOpen"/> the
    /// socket is opened for TCP Fast Open (<c>TCP_FASTOPEN_CONNECT</c>): the connect returns at once and the first send
    /// (the header and first data) goes in the SYN, a round trip sooner. The server's answer to the SYN then comes after
    /// the SOCKS5 reply: a refused server shows as a connection closed without data rather than as a SOCKS5 error, and
    /// the next fallback server is not tried for it (as with ss-libev's <c>--fast-open</c>). <see cref="OpenOptions.Multipath"/>:
    /// Multipath TCP sockets (<c>mptcp</c>); <see cref="OpenOptions.Interface"/>: the interface they leave by (<c>-i</c>).
    /// </summary>
    public static TransformBlock<TcpSession, TcpSession> ToServer(StageOptions options, ServerFailover servers, IDnsResolver? serverNames = null, OpenOptions how = default)
    {
        Func<EndPoint, CancellationToken, ValueTask<Socket>> open = serverNames is null
            ? (server, token) => OpenAsync(server, how, token)
            : (server, token) => server is DnsEndPoint name
                ? OpenByNameAsync(name, serverNames, how, servers, token)
                : OpenAsync(server, how, token);
        return new(StageGuard.Isolate(Name, async session =>
        {
            using var span = StageActivity.Start(Name, session, options);
            try
            {
                var (socket, server) = await servers.ConnectAsync(open, session.Cancellation.Token).ConfigureAwait(false);
                session.Remote = socket;
                if (span is not null)
                {
                    // The address and port the socket reached, as the semantic conventions name them (and as the
                    // server's connect span has them); it was the configured name:port in the address alone.
                    var (address, port) = (socket.RemoteEndPoint ?? server) switch
                    {
                        IPEndPoint reached => (DualStack.Unmapped(reached.Address).ToString(), reached.Port),
                        DnsEndPoint named => (named.Host, named.Port),
                        var other => (other.ToString()!, 0),
                    };
                    span.SetTag(TagNames.NetworkPeerAddress, address);
                    span.SetTag(TagNames.NetworkPeerPort, port);
                }
            }
            catch (Exception e) when (e is ServerUnreachableException or SocketException or OperationCanceledException or TimeoutException or Polly.Timeout.TimeoutRejectedException)
            {
                var (failure, server) = e is ServerUnreachableException unreachable ? (unreachable.InnerException!, unreachable.Server) : (e, null);
                var named = $"cannot connect to server {string.Join(", ", servers.Servers.Select(ServerFailover.Name))}";
                var reason = $"{named}: {failure.Message}";
                session.FailureReply = failure is SocketException { SocketErrorCode: SocketError.ConnectionRefused }
                    ? Socks5Reply.ConnectionRefused
                    : Socks5Reply.HostUnreachable;
                if (!session.Cancellation.IsCancellationRequested)
                {
                    // Not a client that went away: the server did not answer. The metric's tags are bounded (the reason's
                    // fixed set, the server); the default-level warning's text (the servers, the error) goes to its listener.
                    var why = failure switch
                    {
                        SocketException failed => failed.SocketErrorCode.ToString(),
                        _ => "timed out",
                    };
                    ServerConnectFailure.Count(server, failure, $"{named}: {why}");
                }

                span.Fail(reason);
                session.Fail(reason);
            }

            return session;
        }), BlockOptions.Shared(options));
    }

    /// <summary>
    /// Server: connects to the first of the resolved addresses that answers within <paramref name="timeout"/> (all
    /// of them together), racing them as <see cref="HappyEyeballs"/> does, from <paramref name="how"/>'s source address
    /// and interface when given (<c>-b</c>, <c>-i</c>). Addresses that are <paramref name="forbidden"/> or on the
    /// <paramref name="acl"/>'s outbound block list are skipped.
    /// <para>
    /// While it connects, the client's socket is in <paramref name="clientWatch"/> (by default
    /// <see cref="HalfOpenWatch.Shared"/>): a client that resets meanwhile (or whose socket fails) ends the connection
    /// within a sweep, and with it the connect, which would otherwise hold the session, its buffers and two descriptors
    /// until the timeout. A client that only half-closes (a FIN after its request) is still connected and served, its
    /// FIN passed on after the request: ss-server 3.3.5 notices neither during its connect (it connects, sends the
    /// request, then reads the FIN and closes both sides, or the reset and closes).
    /// </para>
    /// </summary>
    public static TransformBlock<TcpSession, TcpSession> ToDestination(
        StageOptions options, TimeSpan timeout, TimeProvider timeProvider, ForbiddenAddresses? forbidden = null, OpenOptions how = default,
        AccessControlList? acl = null, HalfOpenWatch? clientWatch = null) =>
        new(StageGuard.Isolate(Name, async session =>
        {
            using var span = StageActivity.Start(Name, session, options);
            string? lastError = null;
            var refused = false;
            string? failure = null; // the metric's reason; null: the client went away first (not the destination's failure)
            var anyForbidden = false;
            var allowed = new List<IPAddress>(session.ResolvedAddresses.Length);
            foreach (var address in session.ResolvedAddresses)
            {
                if (forbidden?.Contains(address) == true)
                {
                    anyForbidden = true;
                    lastError = $"{address} is a forbidden destination (--forbidden-ip)";
                }
                else if (acl?.BlocksOutbound(address) == true)
                {
                    lastError = $"{address} is refused by the ACL (outbound_block_list)";
                }
                else
                {
                    // An IPv4-mapped IPv6 address (ATYP 4, ::ffff:a.b.c.d) is reached as the IPv4 address it stands for:
                    // .NET's IPv6 sockets are IPv6-only, and a connect to the mapped form fails (ss-libev's reaches it).
                    allowed.Add(DualStack.Unmapped(address));
                }
            }

            if (allowed.Count > 0)
            {
                var port = session.Destination.Port;
                var order = HappyEyeballs.Interleave(allowed);
                using var deadline = SocketReads.Deadline(timeout, timeProvider, session.Cancellation.Token);
                var watch = clientWatch ?? HalfOpenWatch.Shared;
                watch.Watch(session, session.Client);
                try
                {
                    var (socket, index) = order.Count == 1
                        ? (await OpenAsync(new IPEndPoint(order[0], port), how, deadline.Token).ConfigureAwait(false), 0)
                        : await HappyEyeballs.ConnectAsync(order, (address, token) => OpenAsync(new IPEndPoint(address, port), how, token), timeProvider, deadline.Token)
                            .ConfigureAwait(false);
                    session.Remote = socket;
                    span?.SetTag(TagNames.NetworkPeerAddress, order[index].ToString());
                    span?.SetTag(TagNames.NetworkPeerPort, port);
                    return session;
                }
                catch (SocketException e)
                {
                    lastError = e.SocketErrorCode.ToString();
                    refused = e.SocketErrorCode == SocketError.ConnectionRefused;
                    failure = session.Cancellation.IsCancellationRequested ? null : DestinationFailure.Of(e.SocketErrorCode);
                }
                catch (OperationCanceledException e)
                {
                    // One address may have refused while another never answered: a refusal is the better answer.
                    lastError = session.Cancellation.IsCancellationRequested ? "the connection ended first"
                        : e.InnerException is SocketException failed ? $"timed out; {failed.SocketErrorCode} before that" : "timed out";
                    refused = e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused };
                    failure = session.Cancellation.IsCancellationRequested ? null : refused ? DestinationFailure.Refused : DestinationFailure.TimedOut;
                }
                finally
                {
                    watch.Forget(session);
                }
            }

            if (allowed.Count == 0 && anyForbidden)
            {
                PipelineTelemetry.ForbiddenDestinations.Add(1);
            }

            if (allowed.Count == 0 && session.ResolvedAddresses.Length > 0)
            {
                failure = DestinationFailure.Forbidden; // every address on --forbidden-ip or the outbound block list
            }

            if (failure is not null)
            {
                DestinationFailure.Count(failure);
            }

            // The local's direct connections (an ACL) still owe their SOCKS5 client a reply.
            session.FailureReply = refused ? Socks5Reply.ConnectionRefused : Socks5Reply.HostUnreachable;
            var reason = $"cannot connect to {session.Destination}: {lastError}";
            span.Fail(reason);
            session.Fail(reason);
            return session;
        }), BlockOptions.Shared(options));

    /// <summary>
    /// A server by name: the address that answered last time first, then the others, families alternating, raced as
    /// <see cref="HappyEyeballs"/> does, so that one that never answers (an IPv6 path that drops packets) costs a
    /// quarter of a second. The address that answers is remembered (in <paramref name="servers"/>).
    /// </summary>
    private static async ValueTask<Socket> OpenByNameAsync(
        DnsEndPoint server, IDnsResolver resolver, OpenOptions how, ServerFailover servers, CancellationToken cancellationToken)
    {
        var addresses = await resolver.ResolveAsync(server.Host, cancellationToken).ConfigureAwait(false);
        if (addresses.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }

        var order = servers.LastAnswered(server) is { } answered && Array.IndexOf(addresses, answered) > 0
            ? HappyEyeballs.Interleave([answered, .. addresses.Where(a => !a.Equals(answered))])
            : HappyEyeballs.Interleave(addresses);

        var (socket, index) = await HappyEyeballs.ConnectAsync(
            order, (address, token) => OpenAsync(new IPEndPoint(address, server.Port), how, token), servers.TimeProvider, cancellationToken).ConfigureAwait(false);
        servers.Answered(server, order[index]);
        return socket;
    }

    private static async ValueTask<Socket> OpenAsync(EndPoint endPoint, OpenOptions how, CancellationToken cancellationToken)
    {
        // An IPv4-mapped address (a server given as ::ffff:a.b.c.d, or a name whose AAAA record is one) is reached as the
        // IPv4 address it stands for: .NET's IPv6 sockets are IPv6-only, and a connect to the mapped form fails.
        if (endPoint is IPEndPoint ip)
        {
            endPoint = DualStack.Unmapped(ip);
        }

        // A name (no resolver of our own): a dual-stack socket where IPv6 exists, as .NET's Socket(SocketType, ProtocolType) makes.
        var dualStack = endPoint is DnsEndPoint && Socket.OSSupportsIPv6;
        var family = endPoint is DnsEndPoint ? (dualStack ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork) : endPoint.AddressFamily;
        var socket = StreamSockets.Open(family, how.Multipath);
        try
        {
            if (dualStack)
            {
                socket.DualMode = true;
            }

            socket.NoDelay = true;
            OutboundSocket.BindToInterface(socket, how.Interface);
            OutboundSocket.BindSource(socket, how.Source, portAtConnect: true);
            if (how.FastOpen)
            {
                socket.SetRawSocketOption(IpProtocolTcp, TcpFastOpenConnect, BitConverter.GetBytes(1));
            }

            await SocketIo.ConnectAsync(socket, endPoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
