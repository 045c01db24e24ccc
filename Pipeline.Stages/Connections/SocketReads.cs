using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>Small receive helpers for the handshake stages (connection-level, not the data path).</summary>
internal static class SocketReads
{
    /// <summary>Receives once into <paramref name="buffer"/> from <paramref name="offset"/>; 0 means the peer closed.</summary>
    public static async ValueTask<int> ReceiveSomeAsync(Socket socket, byte[] buffer, int offset, CancellationToken cancellationToken) =>
        await socket.ReceiveAsync(buffer.AsMemory(offset), SocketFlags.None, cancellationToken).ConfigureAwait(false);

    /// <summary>A token that fires after <paramref name="timeout"/> or when the session is torn down.</summary>
    public static CancellationTokenSource Deadline(TimeSpan timeout, TimeProvider timeProvider, CancellationToken sessionToken)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(sessionToken);
        if (timeout > TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            var timer = new CancellationTokenSource(timeout, timeProvider);
            timer.Token.Register(static s => ((CancellationTokenSource)s!).Cancel(), source);
            source.Token.Register(static t => ((CancellationTokenSource)t!).Dispose(), timer);
        }

        return source;
    }
}
