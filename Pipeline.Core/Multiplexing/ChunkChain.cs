using System.Threading.Tasks.Dataflow;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// The linked data blocks of one direction for one burst of data: chunks go into <see cref="Head"/>;
/// <see cref="Tail"/> completes when the last block has finished (faults and cancellation included).
/// </summary>
internal sealed class ChunkChain(ITargetBlock<Chunk> head, Task tail)
{
    public ITargetBlock<Chunk> Head { get; } = head;

    public Task Tail { get; } = tail;
}
