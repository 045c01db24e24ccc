using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>
/// How a server drains a client that must not learn it failed (PROTOCOL.md § Probe resistance): its bytes are read and
/// discarded, nothing is sent, until it closes, a reset, or <c>idleTimeout</c> after the last bytes it sent. The caller
/// closes the socket afterwards. Used for a failed header (<see cref="Reject.RejectStage"/>) and for a stream that
/// fails authentication after its header (<see cref="Relay.SessionRunner"/>).
/// </summary>
internal static class ClientDrain
{
    /// <summary>Discard buffer size while draining.</summary>
    private const int BufferSize = 4096;

    /// <summary>Reads <paramref name="client"/> until it closes, resets, stays silent for <paramref name="idleTimeout"/>, or <paramref name="stop"/> fires.</summary>
    public static async Task RunAsync(Socket client, TimeSpan idleTimeout, TimeProvider timeProvider, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                // A buffer only for the moment bytes are there: a drained probe that waits holds none.
                using var idle = SocketReads.Deadline(idleTimeout, timeProvider, stop);
                var discarded = await SocketIo.ReceiveRentedAsync(client, BufferSize, idle.Token).ConfigureAwait(false);
                discarded.Return();
                if (discarded.Length == 0)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Timed out, stopped or reset: either way the drain is over.
        }
    }
}
