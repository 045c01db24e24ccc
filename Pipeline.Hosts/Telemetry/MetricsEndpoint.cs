using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Shadowsocks.Pipeline.Hosts.Telemetry;

/// <summary>
/// <c>telemetry.metrics_listen</c> (<c>--metrics ADDR:PORT</c>): a plain HTTP/1.1 responder for Prometheus's scrapes.
/// <c>GET /metrics</c> (and <c>HEAD</c>) answers the <see cref="PrometheusCollector"/>'s text; another path 404, another
/// method on it 405; one request per connection (<c>Connection: close</c>). It has no authentication and no TLS: it
/// belongs on loopback or behind a firewall. A client that sends no whole request head within
/// <see cref="RequestTimeout"/> is closed, and at most <see cref="MaxClients"/> are served at once (more are closed at
/// accept), so a stuck scraper cannot pile up sockets.
/// </summary>
/// <remarks>
/// What is read of a request (RFC 9112), up to the blank line; a body, if any, is not read:
/// <code>
/// +--------+---+----------------+---+----------+------+---------------------+------+
/// | METHOD | SP | /metrics[?...] | SP | HTTP/1.x | CRLF | header lines (CRLF)* | CRLF |
/// +--------+---+----------------+---+----------+------+---------------------+------+
/// </code>
/// </remarks>
internal sealed class MetricsEndpoint : IAsyncDisposable
{
    /// <summary>The one path served: Prometheus's default <c>metrics_path</c>.</summary>
    public const string ScrapePath = "/metrics";

    /// <summary>The request line and headers at most: Prometheus sends about 300 bytes.</summary>
    private const int MaxRequestHead = 8192;

    /// <summary>Clients served at once: a Prometheus server or two, and someone with curl.</summary>
    private const int MaxClients = 8;

    /// <summary>How long a client has for its request head, and the response's send and close after it.</summary>
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);

    /// <summary>A pause after a failed accept (no file descriptor to spare), so the loop does not spin.</summary>
    private static readonly TimeSpan AcceptRetry = TimeSpan.FromMilliseconds(100);

    private readonly Socket _listener;
    private readonly Func<string> _scrape;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private int _serving;

    private MetricsEndpoint(Socket listener, Func<string> scrape, TimeProvider time)
    {
        _listener = listener;
        _scrape = scrape;
        _time = time;
        LocalEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Where it listens (the port chosen, when 0 was asked).</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Listens on <paramref name="at"/>; the socket error when it cannot (the port in use, an address not this machine's).</summary>
    public static (MetricsEndpoint? Endpoint, SocketException? Error) Start(IPEndPoint at, Func<string> scrape, TimeProvider time)
    {
        var socket = new Socket(at.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (at.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true; // "::" takes IPv4 as well, as the relay's listener does alone
            }

            socket.Bind(at);
            socket.Listen(MaxClients);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            return (null, e);
        }

        return (new MetricsEndpoint(socket, scrape, time), null);
    }

    /// <summary>The status line's code and phrase for a request head, whether the metrics are the body, and whether only the head goes back (HEAD).</summary>
    public static (int Status, string Phrase, bool Metrics, bool HeadOnly) Answer(ReadOnlySpan<byte> head)
    {
        var lineEnd = head.IndexOf((byte)'\n');
        var line = Encoding.ASCII.GetString(lineEnd < 0 ? head : head[..lineEnd]).TrimEnd('\r');
        var parts = line.Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || !parts[1].StartsWith('/') || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            return (400, "Bad Request", false, false);
        }

        var query = parts[1].IndexOf('?', StringComparison.Ordinal);
        var path = query < 0 ? parts[1] : parts[1][..query];
        if (path != ScrapePath)
        {
            return (404, "Not Found", false, false);
        }

        if (parts[0] is not ("GET" or "HEAD"))
        {
            return (405, "Method Not Allowed", false, false);
        }

        return (200, "OK", true, parts[0] == "HEAD");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _accepting.ConfigureAwait(false);
        _stop.Dispose();
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
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                try
                {
                    await Task.Delay(AcceptRetry, _time, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            if (Interlocked.Increment(ref _serving) > MaxClients)
            {
                Interlocked.Decrement(ref _serving);
                client.Dispose();
                continue;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var timeout = new CancellationTokenSource(RequestTimeout, _time);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stop.Token);
        try
        {
            using (client)
            {
                var buffer = new byte[MaxRequestHead];
                var length = 0;
                while (EndOfHead(buffer.AsSpan(0, length)) < 0)
                {
                    if (length == buffer.Length)
                    {
                        await RespondAsync(client, 431, "Request Header Fields Too Large", null, cancel.Token).ConfigureAwait(false);
                        return;
                    }

                    var read = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancel.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        return; // closed before a whole request
                    }

                    length += read;
                }

                var (status, phrase, metrics, headOnly) = Answer(buffer.AsSpan(0, length));
                string? body = null;
                if (metrics)
                {
                    try
                    {
                        body = _scrape();
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        // An observable instrument's callback that threw (a bug): said to the scraper, the relay goes on.
                        (status, phrase, body, headOnly) = (500, "Internal Server Error", $"{e.GetType().Name}: {e.Message}\n", false);
                    }
                }

                await RespondAsync(client, status, phrase, body, cancel.Token, headOnly).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A client gone, too slow, or the program stopping: nothing to answer.
        }
        finally
        {
            Interlocked.Decrement(ref _serving);
        }
    }

    /// <summary>Sends the response, then waits for the client to close (a request body it sent, left unread, would otherwise turn the close into a reset that can cost the client its response).</summary>
    private static async Task RespondAsync(Socket client, int status, string phrase, string? body, CancellationToken cancellationToken, bool headOnly = false)
    {
        var content = Encoding.UTF8.GetBytes(body ?? (status == 200 ? "" : $"{status} {phrase}{(status is 404 or 405 ? $": Prometheus metrics are at GET {ScrapePath}" : "")}\n"));
        var head = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {status} {phrase}\r\n")
            .Append(status == 200 && body is not null ? $"Content-Type: {PrometheusCollector.ContentType}\r\n" : "Content-Type: text/plain; charset=utf-8\r\n")
            .Append(status == 405 ? "Allow: GET, HEAD\r\n" : "")
            .Append(CultureInfo.InvariantCulture, $"Content-Length: {content.Length}\r\n")
            .Append("Connection: close\r\n\r\n")
            .ToString();
        await client.SendAsync(Encoding.ASCII.GetBytes(head), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        if (!headOnly)
        {
            await client.SendAsync(content, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }

        client.Shutdown(SocketShutdown.Send);
        var drain = new byte[1024];
        while (await client.ReceiveAsync(drain, SocketFlags.None, cancellationToken).ConfigureAwait(false) > 0)
        {
        }
    }

    /// <summary>Where the head ends (after its blank line), or -1 while it has not.</summary>
    private static int EndOfHead(ReadOnlySpan<byte> received)
    {
        var crlf = received.IndexOf("\r\n\r\n"u8);
        if (crlf >= 0)
        {
            return crlf + 4;
        }

        var lf = received.IndexOf("\n\n"u8);
        return lf < 0 ? -1 : lf + 2;
    }
}
