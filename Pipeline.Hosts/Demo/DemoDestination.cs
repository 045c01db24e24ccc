using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Shadowsocks.Pipeline.Hosts.Demo;

/// <summary>
/// The demo's own loopback destination: answers an HTTP GET with a short page (for the curl line it prints)
/// and echoes anything else (for the self-check transfer).
/// </summary>
internal sealed class DemoDestination : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();

    public DemoDestination()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        _ = AcceptLoopAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var _ = client;
        var buffer = new byte[64 * 1024];
        try
        {
            var first = true;
            while (true)
            {
                var received = await client.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (received == 0)
                {
                    client.Shutdown(SocketShutdown.Send);
                    return;
                }

                if (first && received >= 4 && buffer.AsSpan(0, 4).SequenceEqual("GET "u8))
                {
                    const string body = "hello from the shadowsocks demo: this page came through local -> server -> here\n";
                    var response = $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";
                    await client.SendAsync(Encoding.ASCII.GetBytes(response), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                    client.Shutdown(SocketShutdown.Send);
                    return;
                }

                first = false;
                await client.SendAsync(buffer.AsMemory(0, received), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // The demo is stopping or the client went away.
        }
    }
}
