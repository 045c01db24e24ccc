using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Decrypt;

/// <summary>
/// Per-connection, ordered: ciphertext chunk in, the plaintext it completes out (possibly empty while a chunk is
/// partial). A failed tag or chunk length first calls <c>onFailure</c> (the relay decides how the connection ends,
/// before anything else can tear it down) and then faults the block.
/// </summary>
internal static class DecryptStage
{
    public static TransformBlock<Chunk, Chunk> Create(IStreamDecryptor decryptor, StageOptions options, Action onFailure, CancellationToken cancellationToken) =>
        new(cipher =>
        {
            byte[]? output = null;
            try
            {
                cancellationToken.ThrowIfCancellationRequested(); // torn down: the chunk is dropped
                output = Chunk.RentBuffer(decryptor.MaxOutputSize(cipher.Length));
                var status = decryptor.Decrypt(cipher.Span, output, out var written);
                if (status != DecryptStatus.Ok)
                {
                    PipelineTelemetry.AuthenticationFailures.Add(1, TransportTags.Tcp);
                    onFailure();
                    throw new StreamDecryptionException(status);
                }

                var result = new Chunk(output, written);
                output = null;
                return result;
            }
            finally
            {
                cipher.Return();
                if (output is not null)
                {
                    new Chunk(output, 0).Return();
                }
            }
        }, BlockOptions.Ordered(options));
}
