using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// Sends a whole buffer on a stream socket, trying the non-blocking send first. A send the kernel takes at once (the
/// usual case: the socket's send buffer has room) is one syscall with no async state; only what does not fit waits
/// for room (<see cref="SocketReadiness"/>), holding nothing per socket beyond the wait.
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
        if (error is SocketError.WouldBlock or SocketError.InProgress)
        {
            // InProgress: a TCP Fast Open socket's first send started the connect without data in the SYN (no
            // cookie for that server yet); the data goes once it is connected.
            sent = 0;
        }
        else if (error != SocketError.Success)
        {
            throw new SocketException((int)error);
        }

        // All of it, or the send buffer is full (a short send): the rest goes when the socket is
        // writable again.
        return sent == data.Length ? ValueTask.CompletedTask : SendRestAsync(socket, data[sent..], cancellationToken);
    }

    /// <summary>What did not fit: waits for room in the send buffer and sends again until all of it is out.</summary>
    private static async ValueTask SendRestAsync(Socket socket, ReadOnlyMemory<byte> rest, CancellationToken cancellationToken)
    {
        while (!rest.IsEmpty)
        {
            await SocketReadiness.WritableAsync(socket, cancellationToken).ConfigureAwait(false);
            var sent = socket.Send(rest.Span, SocketFlags.None, out var error);
            if (error == SocketError.Success)
            {
                rest = rest[sent..];
            }
            else if (error is not (SocketError.WouldBlock or SocketError.InProgress))
            {
                throw new SocketException((int)error);
            }
        }
    }
}
