using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A loopback destination that echoes every byte back and, when the client half-closes, finishes its echo and
/// half-closes too. Counts the connections it accepted (to prove that nothing arrived).
/// </summary>
internal sealed class EchoDestination : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();
    private int _accepted;
    private long _bytes;

    public EchoDestination()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(1024);
        _ = AcceptLoopAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public int Accepted => Volatile.Read(ref _accepted);

    public long BytesReceived => Interlocked.Read(ref _bytes);

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            _ = EchoAsync(client);
        }
    }

    private async Task EchoAsync(Socket client)
    {
        using var _ = client;
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var received = await client.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (received == 0)
                {
                    client.Shutdown(SocketShutdown.Send);
                    return;
                }

                Interlocked.Add(ref _bytes, received);
                await client.SendAsync(buffer.AsMemory(0, received), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Test over or the relay tore the connection down.
        }
    }
}
