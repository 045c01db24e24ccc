using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>Small receive helpers for the handshake stages (connection-level, not the data path).</summary>
internal static class SocketReads
{
    /// <summary>Receives once into <paramref name="buffer"/> from <paramref name="offset"/>; 0 means the peer closed.</summary>
    public static async ValueTask<int> ReceiveSomeAsync(Socket socket, byte[] buffer, int offset, CancellationToken cancellationToken) =>
        await SocketIo.ReceiveAsync(socket, buffer.AsMemory(offset), cancellationToken).ConfigureAwait(false);

    /// <summary>A token that fires after <paramref name="timeout"/> on <paramref name="timeProvider"/> or when the session is torn down.</summary>
    public static Deadline Deadline(TimeSpan timeout, TimeProvider timeProvider, CancellationToken sessionToken) =>
        new(timeout, timeProvider, sessionToken);
}
