using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// Receiving datagrams from one peer, for the UDP interop tests: the next one within a wait (others are skipped: strays
/// for a previous owner of the port), or every one until the peer has been quiet for <see cref="Quiet"/>.
/// </summary>
internal static class DatagramsFrom
{
    /// <summary>How long after the last datagram a peer counts as done.</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1.5);

    /// <summary>Every datagram from <paramref name="from"/>: the first within <paramref name="wait"/>, each next within <see cref="Quiet"/> (only the first with <paramref name="once"/>).</summary>
    public static async Task<List<byte[]>> CollectAsync(Socket socket, EndPoint from, TimeSpan wait, bool once)
    {
        var seen = new List<byte[]>();
        while (await TryReceiveAsync(socket, from, wait) is { } datagram)
        {
            seen.Add(datagram);
            if (once)
            {
                break;
            }

            wait = Quiet;
        }

        return seen;
    }

    /// <summary>As <see cref="CollectAsync"/>, each datagram read as ASCII text.</summary>
    public static async Task<List<string>> CollectTextAsync(Socket socket, EndPoint from, TimeSpan wait) =>
        (await CollectAsync(socket, from, wait, once: false)).Select(static d => System.Text.Encoding.ASCII.GetString(d)).ToList();

    /// <summary>The next datagram from <paramref name="from"/>, or null after <paramref name="wait"/>.</summary>
    public static async Task<byte[]?> TryReceiveAsync(Socket socket, EndPoint from, TimeSpan wait)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(wait.TotalSeconds * Stopwatch.Frequency);
        while (await ReceiveFromAsync(socket, Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline)) is { } datagram)
        {
            if (from.Equals(datagram.From))
            {
                return datagram.Data;
            }
        }

        return null;
    }

    /// <summary>The next datagram from anyone, with its sender, or null after <paramref name="wait"/>.</summary>
    public static async Task<(byte[] Data, IPEndPoint From)?> ReceiveFromAsync(Socket socket, TimeSpan wait)
    {
        if (wait <= TimeSpan.Zero)
        {
            return null;
        }

        using var timeout = new CancellationTokenSource(wait);
        var buffer = new byte[65_536];
        try
        {
            var result = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
            return (buffer[..result.ReceivedBytes], (IPEndPoint)result.RemoteEndPoint);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }
}
