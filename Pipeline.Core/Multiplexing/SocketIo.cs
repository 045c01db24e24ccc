using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// Receives and connects for the TCP relays' sockets: the non-blocking call first, and only when it would block a wait
/// on <see cref="SocketReadiness"/>, then the call again. (Sends: <see cref="SocketSend"/>.) The sockets never go
/// through .NET's socket engine, which would keep them registered for every readiness edge for their whole life.
/// </summary>
internal static class SocketIo
{
    /// <summary>Receives once (waiting for data if none is there); 0 means the peer closed its side.</summary>
    public static ValueTask<int> ReceiveAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (socket.Blocking)
        {
            socket.Blocking = false;
        }

        var received = socket.Receive(buffer.Span, SocketFlags.None, out var error);
        return error switch
        {
            SocketError.Success => ValueTask.FromResult(received),
            SocketError.WouldBlock => WaitAndReceiveAsync(socket, buffer, cancellationToken),
            _ => ValueTask.FromException<int>(new SocketException((int)error)),
        };
    }

    /// <summary>
    /// Connects <paramref name="socket"/> to an IP endpoint without blocking: the connect starts at once and its
    /// outcome arrives as writability. Other endpoints (host names) go through .NET's own connect.
    /// </summary>
    public static async ValueTask ConnectAsync(Socket socket, EndPoint endPoint, CancellationToken cancellationToken)
    {
        if (endPoint is not IPEndPoint)
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return;
        }

        socket.Blocking = false;
        try
        {
            socket.Connect(endPoint);
            return;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
        {
            // In progress: the outcome comes as writability.
        }

        while (true)
        {
            await SocketReadiness.WritableAsync(socket, cancellationToken).ConfigureAwait(false);
            var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
            if (error != SocketError.Success)
            {
                throw new SocketException((int)error);
            }

            // Writable without an error: connected. Poll lets the Socket object record it (its RemoteEndPoint,
            // Connected) as it does after a non-blocking connect.
            if (socket.Poll(0, SelectMode.SelectWrite))
            {
                return;
            }
        }
    }

    private static async ValueTask<int> WaitAndReceiveAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            await SocketReadiness.ReadableAsync(socket, cancellationToken).ConfigureAwait(false);
            var received = socket.Receive(buffer.Span, SocketFlags.None, out var error);
            if (error == SocketError.Success)
            {
                return received;
            }

            if (error != SocketError.WouldBlock)
            {
                throw new SocketException((int)error);
            }
        }
    }
}
