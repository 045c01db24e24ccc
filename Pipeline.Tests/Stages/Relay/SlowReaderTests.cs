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

        var received = new MemoryStream();
        var buffer = new byte[4 << 10];
        var end = SocketError.Success;
        while (true)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(16), cancel.Token);
            int n;
            try
            {
                n = await destination.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            }
            catch (SocketException e)
            {
                end = e.SocketErrorCode;
                break;
            }

            if (n == 0)
            {
                break;
            }

            received.Write(buffer, 0, n);
        }

        Assert.Equal(SocketError.Success, end);
        Assert.Equal(upload.Length, received.Length);
        Assert.True(upload.AsSpan().SequenceEqual(received.ToArray()), "the upload arrived altered");
        await sending;
    }
}
