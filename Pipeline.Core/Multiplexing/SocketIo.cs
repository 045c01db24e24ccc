using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

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
        NonBlocking(socket);

        try
        {
            return TryReceive(socket, buffer.Span, out var received) ? ValueTask.FromResult(received) : WaitAndReceiveAsync(socket, buffer, cancellationToken);
        }
        catch (SocketException e)
        {
            return ValueTask.FromException<int>(e);
        }
    }

    /// <summary>Makes <paramref name="socket"/> non-blocking (once: later calls find it so), as the receives here need.</summary>
    public static void NonBlocking(Socket socket)
    {
        if (socket.Blocking)
        {
            socket.Blocking = false;
        }
    }

    /// <summary>
    /// A receive on a non-blocking socket (<see cref="NonBlocking"/>): false when it would block; true with the byte
    /// count otherwise, 0 meaning the peer closed its side. Other errors throw.
    /// </summary>
    public static bool TryReceive(Socket socket, Span<byte> buffer, out int received)
    {
        received = socket.Receive(buffer, SocketFlags.None, out var error);
        return error switch
        {
            SocketError.Success => true,
            SocketError.WouldBlock => false,
            _ => throw new SocketException((int)error),
        };
    }

    /// <summary>
    /// Receives once into a buffer of <paramref name="size"/> bytes rented from the pool only when data is there: while
    /// the peer sends nothing, the wait holds no buffer. The caller owns the chunk and returns it; a chunk of length 0
    /// means the peer closed its side.
    /// </summary>
    public static ValueTask<Chunk> ReceiveRentedAsync(Socket socket, int size, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        NonBlocking(socket);

        return TryReceiveRented(socket, size, out var chunk) ? ValueTask.FromResult(chunk) : WaitAndReceiveRentedAsync(socket, size, cancellationToken);
    }

    /// <summary>
    /// Connects <paramref name="socket"/> to an IP endpoint without blocking: the connect starts at once and its
    /// outcome arrives as writability (then <c>SO_ERROR</c>). "In progress", the usual answer, is a return value here,
    /// not an exception. Other endpoints (host names) go through .NET's own connect. The Socket object is not told
    /// it is connected (its <c>Connected</c> and <c>RemoteEndPoint</c> stay unset); sends, receives and shutdown work
    /// the same.
    /// </summary>
    public static ValueTask ConnectAsync(Socket socket, EndPoint endPoint, CancellationToken cancellationToken)
    {
        if (endPoint is not IPEndPoint ip)
        {
            return socket.ConnectAsync(endPoint, cancellationToken);
        }

        cancellationToken.ThrowIfCancellationRequested();
        socket.Blocking = false;
        var error = StartConnect(socket, ip);
        return error switch
        {
            0 => ValueTask.CompletedTask,
            Epoll.InProgress or Epoll.Interrupted => FinishConnectAsync(socket, cancellationToken),
            _ => ValueTask.FromException(new SocketException((int)ToSocketError(error))),
        };
    }

    private static unsafe int StartConnect(Socket socket, IPEndPoint endPoint)
    {
        var address = endPoint.Serialize(); // the native sockaddr (.NET 8 and later)
        var bytes = address.Buffer.Span[..address.Size];
        fixed (byte* pointer = bytes)
        {
            return Epoll.Connect(socket.SafeHandle, pointer, bytes.Length) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    private static async ValueTask FinishConnectAsync(Socket socket, CancellationToken cancellationToken)
    {
        await SocketReadiness.WritableAsync(socket, cancellationToken).ConfigureAwait(false);
        var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
        if (error != SocketError.Success)
        {
            throw new SocketException((int)error);
        }
    }

    /// <summary>An immediate failure of <c>connect</c> (Linux errno) as .NET names it.</summary>
    private static SocketError ToSocketError(int errno) => errno switch
    {
        111 => SocketError.ConnectionRefused, // ECONNREFUSED
        101 => SocketError.NetworkUnreachable, // ENETUNREACH
        113 => SocketError.HostUnreachable, // EHOSTUNREACH
        110 => SocketError.TimedOut, // ETIMEDOUT
        99 => SocketError.AddressNotAvailable, // EADDRNOTAVAIL
        97 => SocketError.AddressFamilyNotSupported, // EAFNOSUPPORT
        1 or 13 => SocketError.AccessDenied, // EPERM, EACCES (a firewall rule)
        22 => SocketError.InvalidArgument, // EINVAL
        _ => SocketError.SocketError,
    };

    private static async ValueTask<Chunk> WaitAndReceiveRentedAsync(Socket socket, int size, CancellationToken cancellationToken)
    {
        while (true)
        {
            await SocketReadiness.ReadableAsync(socket, cancellationToken).ConfigureAwait(false);
            if (TryReceiveRented(socket, size, out var chunk))
            {
                return chunk;
            }
        }
    }

    /// <summary>
    /// A non-blocking receive of at most <paramref name="size"/> bytes into a rented buffer, the caller's to return;
    /// false, with nothing rented, when it would block. Other errors throw.
    /// </summary>
    public static bool TryReceiveRented(Socket socket, int size, out Chunk chunk)
    {
        var buffer = Chunk.RentBuffer(size);
        try
        {
            if (TryReceive(socket, buffer.AsSpan(0, size), out var received))
            {
                chunk = new Chunk(buffer, received);
                return true;
            }
        }
        catch (SocketException)
        {
            new Chunk(buffer, 0).Return();
            throw;
        }

        new Chunk(buffer, 0).Return();
        chunk = default;
        return false;
    }

    private static async ValueTask<int> WaitAndReceiveAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            await SocketReadiness.ReadableAsync(socket, cancellationToken).ConfigureAwait(false);
            if (TryReceive(socket, buffer.Span, out var received))
            {
                return received;
            }
        }
    }

    /// <summary>
    /// The socket's pending error (<c>SO_ERROR</c>, cleared by the read): 0 for none, a positive errno (a reset that no
    /// receive has seen), or -1 when the socket is closed already.
    /// </summary>
    public static int PendingError(Socket socket)
    {
        try
        {
            return socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error) is int error ? error : 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return -1;
        }
    }

    /// <summary>
    /// Bytes sent on the socket that its peer has acknowledged (<c>tcpi_bytes_acked</c> of <c>TCP_INFO</c>, Linux 4.1+):
    /// it grows whenever the peer takes data, however slowly, where a send blocked on a slow reader may not complete for
    /// minutes. -1 when the socket is closed already or the kernel does not say.
    /// </summary>
    public static long BytesAcked(Socket socket)
    {
        const int IpProtocolTcp = 6;
        const int TcpInfo = 11;
        const int BytesAckedOffset = 120; // struct tcp_info: 8 bytes of u8 fields, 24 u32 fields, two u64 pacing rates
        Span<byte> info = stackalloc byte[BytesAckedOffset + sizeof(long)];
        try
        {
            return socket.GetRawSocketOption(IpProtocolTcp, TcpInfo, info) >= info.Length
                ? MemoryMarshal.Read<long>(info[BytesAckedOffset..])
                : -1;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return -1;
        }
    }

    /// <summary>
    /// Bytes queued toward the socket's peer that it has not acknowledged yet (<c>SIOCOUTQ</c>): 0 once everything
    /// sent has been delivered to the peer's kernel, or -1 when the socket is closed already (or not a TCP stream).
    /// </summary>
    public static int UnsentBytes(Socket socket)
    {
        try
        {
            return Epoll.IoControl(socket.SafeHandle, Epoll.OutQueue, out var queued) == 0 ? queued : -1;
        }
        catch (ObjectDisposedException)
        {
            return -1;
        }
    }

    /// <summary>
    /// Whether the TCP connection is in state CLOSE (<c>TCP_INFO</c>'s first byte): reset by its peer (or timed out), or
    /// closed already. Nothing queued on it will be delivered. Unlike <see cref="PendingError"/> it does not fade once
    /// read: a reset whose error a receive, a send or a sweep took first still shows here.
    /// </summary>
    public static bool IsClosedTcp(Socket socket)
    {
        const int IpProtocolTcp = 6;
        const int TcpInfo = 11;
        const byte TcpClose = 7;
        Span<byte> info = stackalloc byte[8];
        try
        {
            return socket.GetRawSocketOption(IpProtocolTcp, TcpInfo, info) > 0 && info[0] == TcpClose;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }
}
