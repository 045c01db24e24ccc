using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>A loopback HTTP/1.1 server that answers every request with one fixed body and closes.</summary>
internal sealed class TinyHttpServer : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[] _response;

    public TinyHttpServer(string body)
    {
        _response = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}");
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(128);
        _ = ServeAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public int Requests { get; private set; }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task ServeAsync()
    {
        var buffer = new byte[8192];
        while (true)
        {
            try
            {
                using var client = await _listener.AcceptAsync(_stop.Token);
                var request = new StringBuilder();
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var received = await client.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                    if (received == 0)
                    {
                        break;
                    }

                    request.Append(Encoding.ASCII.GetString(buffer, 0, received));
                }

                Requests++;
                await client.SendAsync(_response, SocketFlags.None, _stop.Token);
                client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // One bad client; keep serving.
            }
        }
    }
}
