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
                span?.SetTag(TagNames.NetworkPeerAddress, server.ToString());
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or TimeoutException or Polly.Timeout.TimeoutRejectedException
                or Polly.CircuitBreaker.BrokenCircuitException)
            {
                var reason = $"cannot connect to server {string.Join(", ", servers.Servers)}: {e.Message}";
                session.FailureReply = e is SocketException { SocketErrorCode: SocketError.ConnectionRefused }
                    ? Socks5Reply.ConnectionRefused
                    : Socks5Reply.HostUnreachable;
                span.Fail(reason);
                session.Fail(reason);
            }

            return session;
        }), BlockOptions.Shared(options));
    }

    /// <summary>
    /// Server: connects to the first of the resolved addresses that answers within <paramref name="timeout"/>, from
    /// <paramref name="how"/>'s source address and interface when given (<c>-b</c>, <c>-i</c>). Addresses that are
    /// <paramref name="forbidden"/> or on the <paramref name="acl"/>'s outbound block list are skipped.
    /// </summary>
    public static TransformBlock<TcpSession, TcpSession> ToDestination(
        StageOptions options, TimeSpan timeout, TimeProvider timeProvider, ForbiddenAddresses? forbidden = null, OpenOptions how = default,
        AccessControlList? acl = null) =>
        new(StageGuard.Isolate(Name, async session =>
        {
            using var span = StageActivity.Start(Name, session, options);
            string? lastError = null;
            var refused = false;
            foreach (var address in session.ResolvedAddresses)
            {
                if (forbidden?.Contains(address) == true)
                {
                    lastError = $"{address} is a forbidden destination (--forbidden-ip)";
                    continue;
                }

                if (acl?.BlocksOutbound(address) == true)
                {
                    lastError = $"{address} is refused by the ACL (outbound_block_list)";
                    continue;
                }

                var target = new IPEndPoint(address, session.Destination.Port);
                using var deadline = SocketReads.Deadline(timeout, timeProvider, session.Cancellation.Token);
                try
                {
                    session.Remote = await OpenAsync(target, how, deadline.Token).ConfigureAwait(false);
                    span?.SetTag(TagNames.NetworkPeerAddress, address.ToString());
                    return session;
                }
                catch (SocketException e)
                {
                    lastError = e.SocketErrorCode.ToString();
                    refused = e.SocketErrorCode == SocketError.ConnectionRefused;
                }
                catch (OperationCanceledException)
                {
                    lastError = "timed out";
                }
            }

            // The local's direct connections (an ACL) still owe their SOCKS5 client a reply.
            session.FailureReply = refused ? Socks5Reply.ConnectionRefused : Socks5Reply.HostUnreachable;
            var reason = $"cannot connect to {session.Destination}: {lastError}";
            span.Fail(reason);
            session.Fail(reason);
            return session;
        }), BlockOptions.Shared(options));

    /// <summary>
    /// A server by name: the address that answered last time first, then the others in the resolver's order, the
    /// attempt's time shared out among them, so that one that never answers (an IPv6 path that drops packets) leaves
    /// the next its turn; the last has what is left. The address that answers is remembered (in
    /// <paramref name="servers"/>), so a silent one costs its share once, not on every connection.
    /// </summary>
    private static async ValueTask<Socket> OpenByNameAsync(
        DnsEndPoint server, IDnsResolver resolver, OpenOptions how, ServerFailover servers, CancellationToken cancellationToken)
    {
        var addresses = await resolver.ResolveAsync(server.Host, cancellationToken).ConfigureAwait(false);
        if (servers.LastAnswered(server) is { } answered && Array.IndexOf(addresses, answered) > 0)
        {
            addresses = [answered, .. addresses.Where(a => !a.Equals(answered))];
        }

        SocketException? last = null;
        for (var i = 0; i < addresses.Length; i++)
        {
            var isLast = i == addresses.Length - 1;
            using var slice = isLast ? null : SocketReads.Deadline(servers.AttemptTimeout / addresses.Length, servers.TimeProvider, cancellationToken);
            try
            {
                var socket = await OpenAsync(new IPEndPoint(addresses[i], server.Port), how, slice?.Token ?? cancellationToken).ConfigureAwait(false);
                servers.Answered(server, addresses[i]);
                return socket;
            }
            catch (SocketException e)
            {
                last = e;
            }
            catch (OperationCanceledException) when (!isLast && !cancellationToken.IsCancellationRequested)
            {
                last = new SocketException((int)SocketError.TimedOut); // its share ran out: the next address
            }
        }

        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }

    private static async ValueTask<Socket> OpenAsync(EndPoint endPoint, OpenOptions how, CancellationToken cancellationToken)
    {
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
