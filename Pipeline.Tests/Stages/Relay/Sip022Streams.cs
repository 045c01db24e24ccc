using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Tests.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// What the 2022 and SIP023 TCP interop tests share: reading a response's payload through the reference, comparing
/// bytes, and how a server that must not reveal itself is seen to treat a bad request (silent, then closed at the idle
/// timeout; their servers run with <see cref="Idle"/>).
/// </summary>
internal static class Sip022Streams
{
    /// <summary>The idle timeout the interop tests give the servers they probe.</summary>
    public static readonly TimeSpan Idle = TimeSpan.FromSeconds(2);

    /// <summary>How long a probed server must stay silent and open.</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);

    /// <summary>Reads length/payload chunks after <paramref name="first"/> until <paramref name="total"/> bytes.</summary>
    public static async Task<byte[]> ReadPayloadAsync(Sip022Reference client, Socket socket, byte[] first, int total, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        all.Write(first);
        while (all.Length < total)
        {
            var chunk = await client.ReadChunkAsync(socket, cancellationToken);
            Assert.True(chunk is not null, $"the server ended the response after {all.Length} of {total} bytes");
            all.Write(chunk);
        }

        return all.ToArray();
    }

    public static void AssertSameBytes(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        var firstDifference = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(firstDifference == expected.Length, $"the bytes differ from offset {firstDifference}");
    }

    /// <summary>
    /// No byte back and no close for <see cref="Quiet"/>; the server still takes more bytes; then a FIN with no byte
    /// before it, around the idle timeout after the last byte sent.
    /// </summary>
    public static async Task AssertSilentThenClosedAtIdleAsync(Socket socket, CancellationToken cancellationToken)
    {
        var sinceRequest = Stopwatch.StartNew(); // called right after the request went
        var buffer = new byte[4096];
        using (var quiet = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            quiet.CancelAfter(Quiet);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await socket.ReceiveAsync(buffer, SocketFlags.None, quiet.Token));
        }

        // On a loaded machine the quiet wait can end late; bytes sent near the idle timeout after the request may
        // rightly find the server gone (its deadline fired first). Then only "not before the idle timeout" can be told.
        var late = sinceRequest.Elapsed > Idle - TimeSpan.FromMilliseconds(500);
        await socket.SendAsync(RandomNumberGenerator.GetBytes(3000), SocketFlags.None, cancellationToken); // still read and discarded
        var clock = Stopwatch.StartNew();
        using var cap = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cap.CancelAfter(Idle + TimeSpan.FromSeconds(4));
        int received;
        try
        {
            received = await socket.ReceiveAsync(buffer, SocketFlags.None, cap.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"still open {clock.Elapsed.TotalSeconds:F1} s after the last byte; the idle timeout is {Idle.TotalSeconds} s");
            return;
        }

        Assert.True(received == 0, $"the server answered a bad request with {received} bytes: {Convert.ToHexString(buffer, 0, Math.Min(received, 64))}");
        if (late)
        {
            Assert.InRange(sinceRequest.Elapsed, Idle - TimeSpan.FromMilliseconds(300), Idle + Idle + TimeSpan.FromSeconds(3));
            return;
        }

        Assert.InRange(clock.Elapsed, Idle - TimeSpan.FromMilliseconds(300), Idle + TimeSpan.FromSeconds(3));
    }

    /// <summary>Reads until the peer closes or <paramref name="wait"/> passes: the bytes, and "FIN", "RST" or "still open".</summary>
    public static async Task<(byte[] Received, string Closed)> ReadUntilClosedAsync(Socket socket, TimeSpan wait, CancellationToken cancellationToken)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        using var closeWait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        closeWait.CancelAfter(wait);
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, closeWait.Token);
                if (n == 0)
                {
                    return (received.ToArray(), "FIN");
                }

                received.Write(buffer, 0, n);
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return (received.ToArray(), "RST");
        }
        catch (OperationCanceledException)
        {
            return (received.ToArray(), "still open");
        }
    }
}
