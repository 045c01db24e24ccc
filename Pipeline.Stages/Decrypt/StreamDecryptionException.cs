using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Decrypt;

/// <summary>Faults a decrypt block: the only way a Dataflow block can say "this stream is dead".</summary>
internal sealed class StreamDecryptionException(DecryptStatus status) : Exception($"stream decryption failed: {status}")
{
    public DecryptStatus Status { get; } = status;
}
