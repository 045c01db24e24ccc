using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Forward;

/// <summary>
/// Per-connection, ordered: writes each chunk to a socket, returns its buffer, and counts it out of its direction's
/// <see cref="ChunksInFlight"/> (so the pump may read the next). A send that fails (the peer reset, or went away)
/// first calls <c>onFailure</c> with the socket and the error (the relay decides how the connection ends, before
/// anything else can tear it down) and then faults the block.
/// </summary>
internal static class ForwardStage
{
    public static ActionBlock<Chunk> Create(Socket socket, StageOptions options, Action<int> onSent, ChunksInFlight inFlight, Action<Socket, SocketError> onFailure, CancellationToken cancellationToken) =>
        new(async chunk =>
        {
            try
            {
                if (chunk.Length > 0)
                {
                    await SocketSend.SendAllAsync(socket, chunk.Memory, cancellationToken).ConfigureAwait(false);
                    onSent(chunk.Length);
                }
            }
            catch (SocketException e)
            {
                onFailure(socket, e.SocketErrorCode);
                throw;
            }
            finally
            {
                chunk.Return();
                inFlight.Done();
            }
        }, BlockOptions.Ordered(options));
}
