using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// Sends a whole buffer on a stream socket, trying the non-blocking send first. A send the kernel takes at once (the
/// usual case: the socket's send buffer has room) is one syscall with no async state; only what does not fit waits
/// on the socket engine. The engine keeps a send state object (≈ 300 bytes) per socket from its first async send on,
/// so connections that never fill their send buffer, idle ones included, never hold it.
/// </summary>
internal static class SocketSend
{
    public static ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (socket.Blocking)
        {
            socket.Blocking = false;
        }

        if (data.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        var sent = socket.Send(data.Span, SocketFlags.None, out var error);
        if (error == SocketError.WouldBlock)
        {
            sent = 0;
        }
        else if (error != SocketError.Success)
        {
            throw new SocketException((int)error);
        }

        // All of it, or the send buffer is full (a short send): the engine sends the rest when the socket is
        // writable again.
        return sent == data.Length ? ValueTask.CompletedTask : SendRestAsync(socket, data[sent..], cancellationToken);
    }

    /// <summary>On a stream socket <see cref="Socket.SendAsync(ReadOnlyMemory{byte}, SocketFlags, CancellationToken)"/> completes when all of it is sent.</summary>
    private static async ValueTask SendRestAsync(Socket socket, ReadOnlyMemory<byte> rest, CancellationToken cancellationToken) =>
        await socket.SendAsync(rest, SocketFlags.None, cancellationToken).ConfigureAwait(false);
}
