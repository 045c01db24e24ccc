using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// Readiness waits for the TCP relays' sockets, on one <see cref="EventLoop"/> thread for the process (as .NET's
/// socket engine has one epoll thread). The loop only reports: a wait's continuation runs on the thread pool. A socket
/// joins the loop's set the first time something waits on it (<see cref="SocketInterest"/>); its state lives as long
/// as the socket object.
/// </summary>
internal static class SocketReadiness
{
    private static readonly Lazy<EventLoop> s_loop = new(() => new EventLoop("tcp-readiness"));
    private static readonly ConditionalWeakTable<Socket, SocketInterest> s_interests = new();

    /// <summary>The loop the waits are served on.</summary>
    internal static EventLoop Loop => s_loop.Value;

    /// <summary>Completes when a receive will not block: data, end of stream or an error. Holds no buffer meanwhile.</summary>
    public static Task ReadableAsync(Socket socket, CancellationToken cancellationToken) =>
        Interest(socket).WaitAsync(write: false, cancellationToken);

    /// <summary>Completes when a send will not block (room in the send buffer), a connect has finished, or on an error.</summary>
    public static Task WritableAsync(Socket socket, CancellationToken cancellationToken) =>
        Interest(socket).WaitAsync(write: true, cancellationToken);

    /// <summary>Whether a wait on <paramref name="socket"/> is pending or armed (for tests).</summary>
    internal static bool HasPendingWait(Socket socket) => s_interests.TryGetValue(socket, out var interest) && interest.HasPendingWait;

    private static SocketInterest Interest(Socket socket) =>
        s_interests.TryGetValue(socket, out var interest)
            ? interest
            : s_interests.GetValue(socket, static s => new SocketInterest(s_loop.Value, s));
}
