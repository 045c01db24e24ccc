using System.Net.Sockets;
using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>A peer that reads, but slowly: a relay waits for it, and its idle timeout must not take that for idleness.</summary>
public sealed class SlowReaderTests
{
    [Fact]
    public async Task SlowDestination_ReadingSteadily_GetsTheWholeUpload_ThoughTheServerReadsNothingForLongerThanItsIdleTimeout()
    {
        // The client uploads 4 MiB through a tunnel and our server, whose idle timeout is 1 s; the destination (a 4 KiB
        // receive buffer) reads about 256 KiB/s. The server reads its next chunk only once its send to the destination
        // completes, and a send into a full send buffer completes only once the kernel finds a third of it free again:
        // seconds here, minutes for a reader of a few KiB/s. Yet bytes move all along, and the destination's
        // acknowledgements say so. (Found in review: the idle timer counted reads only and reset the destination after
        // the first second without one: it got a fraction of the upload.) The tunnel's timeout is long: it waits on
        // the server, and sees movement only when the server reads.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var chain = await SlowDestinationChain.StartAsync(cancel.Token);
        var (listener, client) = (chain.Listener, chain.Client);

        var upload = RandomNumberGenerator.GetBytes(4 << 20);
        var sending = client.SendAsync(upload, SocketFlags.None, cancel.Token).AsTask()
            .ContinueWith(_ => client.Shutdown(SocketShutdown.Send), cancel.Token, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        using var destination = await listener.AcceptAsync(cancel.Token);

        // The destination reads 4 KiB every 16 ms on a thread of its own: a reader on the thread pool, stalled for a
        // second or two while other tests load a 2-core machine, once let the 1 s idle timeout see no progress and
        // reset the upload (CI, 2026-11-28). The scheduler's delays are what the server must outlast; the pool's are not.
        var received = new MemoryStream();
        var end = SocketError.Success;
        var reader = new Thread(() =>
        {
            var buffer = new byte[4 << 10];
            while (!cancel.IsCancellationRequested)
            {
                Thread.Sleep(16);
                int n;
                try
                {
                    n = destination.Receive(buffer, SocketFlags.None);
                }
                catch (SocketException e)
                {
                    end = e.SocketErrorCode;
                    return;
                }
                catch (ObjectDisposedException)
                {
                    end = SocketError.OperationAborted; // the test gave up (its deadline) and closed the socket
                    return;
                }

                if (n == 0)
                {
                    return;
                }

                received.Write(buffer, 0, n);
            }
        }) { IsBackground = true, Name = "slow destination" };
        reader.Start();
        while (reader.IsAlive)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancel.Token);
        }

        reader.Join(); // what it wrote is seen here

        Assert.Equal(SocketError.Success, end);
        Assert.Equal(upload.Length, received.Length);
        Assert.True(upload.AsSpan().SequenceEqual(received.ToArray()), "the upload arrived altered");
        await sending;
    }
}
