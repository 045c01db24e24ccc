using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Forward;
using Shadowsocks.Pipeline.Tests.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Stages.Forward;

public sealed class ForwardStageTests
{
    [Fact]
    public async Task ASendToAResetPeer_TellsOnFailure_Once_BeforeTheBlockFaults_AndCountsTheChunkOut()
    {
        // The relay decides how the connection ends in onFailure (a reset both ways): it must hear of the failed send
        // before the block's fault lets anything else tear the connection down (with a FIN). A relay-level test cannot
        // show this on its own: there the pump reading the reset socket sees the reset too.
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        reader.LingerState = new LingerOption(true, 0);
        reader.Close(); // the peer resets
        await Task.Delay(100);

        var inFlight = new ChunksInFlight(new ReadBudget(ReadBudget.DefaultBytes));
        var failures = 0;
        var faultedFirst = false;
        Socket? failedSocket = null;
        ActionBlock<Chunk>? forward = null;
        forward = ForwardStage.Create(writer, new StageOptions(1, 1), _ => { }, inFlight, (socket, _) =>
        {
            Interlocked.Increment(ref failures);
            failedSocket = socket;
            faultedFirst |= forward!.Completion.IsCompleted;
        }, CancellationToken.None);

        for (var i = 0; i < 2 && !forward.Completion.IsCompleted; i++)
        {
            inFlight.Add();
            if (!forward.Post(Chunk.CopyOf(new byte[1000])))
            {
                inFlight.Done();
            }

            await Task.Delay(50);
        }

        await Assert.ThrowsAnyAsync<SocketException>(() => forward.Completion.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(1, failures);
        Assert.Same(writer, failedSocket);
        Assert.False(faultedFirst);
        Assert.Equal(0, inFlight.Count);
    }
}
