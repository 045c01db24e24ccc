using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Stages.Connect;

namespace Shadowsocks.Pipeline.Tests.Stages.Connect;

/// <summary>Drives a <see cref="ServerFailover"/>'s circuits with connections that reach no socket.</summary>
internal static class FailoverConnections
{
    /// <summary>One connection through <paramref name="failover"/>; a server <paramref name="answers"/> does not name refuses.</summary>
    public static async Task ConnectAsync(ServerFailover failover, Func<EndPoint, bool> answers)
    {
        try
        {
            var (socket, _) = await failover.ConnectAsync(
                (server, _) => answers(server)
                    ? ValueTask.FromResult(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)) // never connected: no traffic
                    : ValueTask.FromException<Socket>(new SocketException((int)SocketError.ConnectionRefused)),
                CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
            socket.Dispose();
        }
        catch (ServerUnreachableException)
        {
            // Every server refused: counted by their circuits all the same.
        }
    }
}
