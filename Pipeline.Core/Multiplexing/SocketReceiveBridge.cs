using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// The bridge from socket readiness to a bounded Dataflow block. Readiness is a zero-byte receive on the
/// platform's epoll engine: it completes when the socket is readable and holds no buffer while the connection
/// is idle. Only then is a buffer rented and filled. The next readiness wait is armed only after
/// <c>SendAsync</c> has accepted the previous chunk, so a slow consumer slows the sender instead of growing memory.
/// </summary>
internal static class SocketReceiveBridge
{
    /// <summary>
    /// Pumps <paramref name="socket"/> into <paramref name="target"/> until end of stream (then completes the target),
    /// a declined chunk, cancellation or a socket error. <paramref name="onData"/> is called with each chunk's length
    /// (activity for the idle timer and byte counts).
    /// </summary>
    public static async Task<ReceiveOutcome> RunAsync(
        Socket socket, ITargetBlock<Chunk> target, int chunkSize, Action<int> onData, CancellationToken cancellationToken)
    {
        var lastFilled = false;
        while (true)
        {
            byte[]? buffer = null;
            try
            {
                if (!lastFilled)
                {
                    // Readiness event: no buffer is held while waiting.
                    await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                }

                buffer = Chunk.RentBuffer(chunkSize);
                var received = await socket.ReceiveAsync(buffer.AsMemory(0, chunkSize), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (received == 0)
                {
                    new Chunk(buffer, 0).Return();
                    target.Complete();
                    return ReceiveOutcome.EndOfStream;
                }

                // A full read means more is probably waiting: skip the readiness wait next time.
                lastFilled = received == chunkSize;
                onData(received);
                var chunk = new Chunk(buffer, received);
                buffer = null;
                if (!await target.SendAsync(chunk, cancellationToken).ConfigureAwait(false))
                {
                    chunk.Return();
                    return ReceiveOutcome.Declined;
                }
            }
            catch (OperationCanceledException)
            {
                ReturnIfHeld(buffer);
                return ReceiveOutcome.Cancelled;
            }
            catch (ObjectDisposedException)
            {
                ReturnIfHeld(buffer);
                return ReceiveOutcome.Cancelled;
            }
            catch (SocketException)
            {
                ReturnIfHeld(buffer);
                return ReceiveOutcome.SocketError;
            }
        }
    }

    private static void ReturnIfHeld(byte[]? buffer)
    {
        if (buffer is not null)
        {
            new Chunk(buffer, 0).Return();
        }
    }
}
