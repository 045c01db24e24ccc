using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Tests.Loopback;

/// <summary>
/// A TCP forwarder on loopback that keeps the first bytes each accepted connection sent toward
/// <see cref="Target"/>: what a censor on the path would see. Both directions are copied until either side ends.
/// </summary>
internal sealed class TcpTap : IAsyncDisposable
{
    private const int Kept = 256;
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<byte[]> _openings = [];
    private readonly Task _accepting;

    public TcpTap(IPEndPoint target)
    {
        Target = target;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        _accepting = AcceptAsync();
    }

    public IPEndPoint Target { get; }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>The first bytes (up to 256) of each connection's client-to-target direction, in accept order.</summary>
    public IReadOnlyList<byte[]> Openings
    {
        get
        {
            lock (_openings)
            {
                return [.. _openings];
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
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

            _ = ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(Socket client)
    {
        using var _ = client;
        using var target = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var opening = new List<byte>();
        int index;
        lock (_openings)
        {
            _openings.Add([]);
            index = _openings.Count - 1;
        }

        try
        {
            await target.ConnectAsync(Target, _stop.Token);
            var up = CopyAsync(client, target, data =>
            {
                if (opening.Count < Kept)
                {
                    opening.AddRange(data.Span[..Math.Min(data.Length, Kept - opening.Count)].ToArray());
                    lock (_openings)
                    {
                        _openings[index] = [.. opening];
                    }
                }
            });
            var down = CopyAsync(target, client, static _ => { });
            await Task.WhenAll(up, down);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The tap ends with either side.
        }
    }

    private async Task CopyAsync(Socket from, Socket to, Action<ReadOnlyMemory<byte>> seen)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                seen(buffer.AsMemory(0, n));
                for (var sent = 0; sent < n;)
                {
                    sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, _stop.Token);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Either side went away.
        }
    }
}
