using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Dns;

namespace Shadowsocks.Pipeline.Tests.Core.Dns;

/// <summary>
/// A scripted name server on loopback for what a real one will not do: answer late, answer wrongly, answer from the
/// wrong port. <c>respond</c> gets each query and returns what to send back (nothing, one or several messages),
/// each with whether to send it from a different socket.
/// </summary>
internal sealed class FakeDnsServer : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Socket _other = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Func<byte[], Task<IEnumerable<(byte[] Message, bool FromOtherPort)>>> _respond;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<IPEndPoint> _peers = new();
    private int _queries;

    /// <param name="respond">What to send back to each query.</param>
    /// <param name="port">The UDP port to listen on; 0 picks a free one.</param>
    public FakeDnsServer(Func<byte[], Task<IEnumerable<(byte[] Message, bool FromOtherPort)>>> respond, int port = 0)
    {
        _respond = respond;
        try
        {
            _socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            _other.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        }
        catch (SocketException)
        {
            _socket.Dispose();
            _other.Dispose();
            throw;
        }

        _ = Task.Run(RunAsync);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    public int Queries => Volatile.Read(ref _queries);

    /// <summary>Where each query came from (address and source port), in arrival order.</summary>
    public IReadOnlyCollection<IPEndPoint> Peers => _peers;

    /// <summary>A well-formed answer to <paramref name="query"/> with the given A/AAAA addresses (RCODE 0).</summary>
    public static byte[] Answer(byte[] query, IPAddress[] addresses, uint ttl = 60, int rcode = 0, bool truncated = false)
    {
        var questionEnd = DnsMessage.HeaderSize;
        while (query[questionEnd] != 0)
        {
            questionEnd += query[questionEnd] + 1;
        }

        questionEnd += 5;
        var type = (query[questionEnd - 4] << 8) | query[questionEnd - 3];
        var matching = addresses.Where(a => (a.AddressFamily == AddressFamily.InterNetwork ? 1 : 28) == type).ToArray();
        var message = new List<byte>(query[..questionEnd]);
        message[2] = (byte)(0x81 | (truncated ? 0x02 : 0));
        message[3] = (byte)(0x80 | rcode);
        message[6] = 0;
        message[7] = (byte)matching.Length;
        foreach (var address in matching)
        {
            var bytes = address.GetAddressBytes();
            message.AddRange([0xC0, 12, 0, (byte)type, 0, 1, (byte)(ttl >> 24), (byte)(ttl >> 16), (byte)(ttl >> 8), (byte)ttl, 0, (byte)bytes.Length, .. bytes]);
        }

        return [.. message];
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        _other.Dispose();
    }

    private async Task RunAsync()
    {
        var buffer = new byte[2048];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var result = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                Interlocked.Increment(ref _queries);
                var query = buffer[..result.ReceivedBytes];
                var peer = result.RemoteEndPoint;
                _peers.Enqueue((IPEndPoint)peer);
                _ = Task.Run(async () =>
                {
                    foreach (var (message, fromOther) in await _respond(query))
                    {
                        await (fromOther ? _other : _socket).SendToAsync(message, SocketFlags.None, peer);
                    }
                });
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Disposed.
        }
    }
}
