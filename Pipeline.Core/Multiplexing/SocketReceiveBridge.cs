using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Scheduling;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// The bridge from socket readiness to bounded Dataflow blocks.
/// <list type="bullet">
/// <item>Readiness is a wait on <see cref="SocketReadiness"/>: it completes when the socket is readable and holds no
/// buffer while the connection is idle. Only then is a buffer rented and filled, by a non-blocking receive.</item>
/// <item>Backpressure: the next readiness wait is armed only after <c>SendAsync</c> has accepted the previous chunk,
/// so a slow consumer slows the sender instead of growing memory.</item>
/// <item>Reads grow with the burst: the first read after a quiet spell takes at most <see cref="FirstReadSize"/> bytes,
/// and only a read that fills its buffer moves on to full-size reads, whose buffer the relay's <see cref="ReadBudget"/>
/// sizes by how many connections are busy at once. Requests, replies and keep-alives (most bursts)
/// then rent small buffers; a bulk transfer pays one small read per burst. (Full-size first reads from thousands of
/// connections opening at once left the shared pool holding megabytes of 64 KiB buffers afterwards.)</item>
/// <item>Chunks in flight: while the relay is within its budget a pump reads its next chunk as soon as the chain has
/// taken the last, so reading, ciphering and sending overlap; over budget (many busy connections) it reads the next
/// once its own chain has sent the last (<see cref="ChunksInFlight"/>), one buffer per direction.</item>
/// <item>A pump starts with a readiness wait, not a receive: it starts right after a handshake, which has taken what
/// the peer sent, or right after a connect and the request's send, before the peer can have answered; so a first
/// receive found nothing in nearly every connection (a would-block `recvfrom` per direction: 2 of the 37 system calls
/// of a short connection in each process). Bytes that are waiting all the same are reported at once by the
/// level-triggered wait.</item>
/// <item>Blocks live per burst: when a receive finds nothing waiting (the connection goes quiet) the
/// current chain is completed and let go once it has drained; the next data opens a new one. An idle connection
/// therefore holds neither a buffer nor blocks; a busy one keeps its chain for as long as data keeps coming.</item>
/// </list>
/// </summary>
internal static class SocketReceiveBridge
{
    /// <summary>The most a burst's first read takes (one page: a request, a reply, a handshake).</summary>
    internal const int FirstReadSize = 4096;

    /// <summary>
    /// Pumps <paramref name="socket"/> through chains from <paramref name="openChain"/> until end of stream (the last
    /// chain is completed and drained), a fault, cancellation or a socket error. <paramref name="current"/> is a chain
    /// already opened (holding data that must go first), or null. <paramref name="onData"/> sees each chunk's length.
    /// Full-size reads take <paramref name="readSizeIn"/> of the buffer the relay's budget gives (the plain side
    /// reads less than the buffer, so that its ciphertext fits the same pool bucket). Every chunk handed to a chain is
    /// counted in <paramref name="inFlight"/>, whose chains' last blocks count it out once sent. A socket error (a reset)
    /// is told to <paramref name="onSocketError"/> at once, before the chain drains what came before it.
    /// </summary>
    public static async Task<ReceiveOutcome> RunAsync(
        Socket socket, Func<ChunkChain> openChain, ChunkChain? current, ChunksInFlight inFlight, Func<int, int> readSizeIn, Action<int> onData,
        CancellationToken cancellationToken, Action<Socket>? onSocketError = null)
    {
        var budget = inFlight.Budget;
        Task? draining = null;
        socket.Blocking = false;
        Chunk? held = null; // received and not yet handed to a chain: returned if anything throws meanwhile
        var firstReadSize = Math.Min(FirstReadSize, readSizeIn(ReadBudget.Smallest));
        var readSize = firstReadSize;
        var busy = false;
        var receive = false; // the first turn waits: see the summary
        try
        {
            while (true)
            {
                if (!inFlight.MayReadMore)
                {
                    // Over budget: one chunk at a time, the next read once this chain has sent the last.
                    await inFlight.EmptiedAsync(cancellationToken).ConfigureAwait(false);
                }

                if (busy)
                {
                    readSize = readSizeIn(budget.BufferSize);
                }

                // After the first turn, under load data is already waiting: one non-blocking receive takes it, with no
                // readiness round trip.
                if (!receive || !SocketIo.TryReceiveRented(socket, readSize, out var chunk))
                {
                    receive = true;

                    // Nothing waiting (the buffer went back already), or the first turn: the connection is quiet. Let this burst's
                    // blocks drain and drop them, and wait for the readiness event holding nothing; the next burst
                    // starts with a small read again.
                    readSize = firstReadSize;
                    if (busy)
                    {
                        budget.Leave();
                        busy = false;
                    }

                    if (current is not null)
                    {
                        current.Head.Complete();
                        draining = current.Tail;
                        current = null;
                    }

                    await SocketReadiness.ReadableAsync(socket, cancellationToken).ConfigureAwait(false);
                    continue; // readable: the non-blocking receive above takes it
                }

                if (chunk.Length == 0)
                {
                    chunk.Return();
                    if (current is not null)
                    {
                        current.Head.Complete();
                        await current.Tail.ConfigureAwait(false);
                    }
                    else if (draining is not null)
                    {
                        await draining.ConfigureAwait(false);
                    }

                    return ReceiveOutcome.EndOfStream;
                }

                held = chunk;
                onData(chunk.Length);
                if (chunk.Length == readSize && !busy)
                {
                    // A full buffer: more is waiting, so read at full size from now on.
                    budget.Enter();
                    busy = true;
                }

                if (current is null)
                {
                    if (draining is not null)
                    {
                        // Order across bursts: the previous burst is out before this one goes in.
                        await draining.ConfigureAwait(false);
                        draining = null;
                    }

                    current = openChain();
                }

                held = null;
                inFlight.Add();

                // A short read (the burst's last chunk, or its only one) goes through the chain on this thread; a bulk
                // transfer's chunks go to the pool, where ciphering and sending overlap with the next read.
                var handing = busy
                    ? current.Head.SendAsync(chunk, cancellationToken)
                    : CallerDrainScheduler.Run(static s => s.Head.SendAsync(s.chunk, s.cancellationToken), (current.Head, chunk, cancellationToken));
                if (!await handing.ConfigureAwait(false))
                {
                    chunk.Return();
                    inFlight.Done();
                    return ReceiveOutcome.Faulted;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return ReceiveOutcome.Cancelled;
        }
        catch (ObjectDisposedException)
        {
            return ReceiveOutcome.Cancelled;
        }
        catch (SocketException)
        {
            // A reset (or another failure) of this socket. What was read before it still goes out first, as the
            // bytes before a FIN do; then the caller passes the failure on. It hears of it now, though: the drain can
            // stall (the other side not reading) until something else ends the connection, which must then end it
            // as a reset too.
            onSocketError?.Invoke(socket);
            await DrainedAsync(current, draining).ConfigureAwait(false);
            return ReceiveOutcome.SocketError;
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // A chain's tail faulted (a failed send, a failed decryption): the caller tears the connection down.
            return ReceiveOutcome.Faulted;
        }
        catch (Exception)
        {
            return ReceiveOutcome.Cancelled;
        }
        finally
        {
            held?.Return();
            inFlight.Close();
            if (busy)
            {
                budget.Leave();
            }
        }
    }

    /// <summary>Completes <paramref name="current"/> and waits until it, and <paramref name="draining"/>, are done, however they end.</summary>
    private static async Task DrainedAsync(ChunkChain? current, Task? draining)
    {
        try
        {
            if (draining is not null)
            {
                await draining.ConfigureAwait(false);
            }

            if (current is not null)
            {
                current.Head.Complete();
                await current.Tail.ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // A chain that faulted or was cancelled: the connection is ending either way.
        }
    }
}
