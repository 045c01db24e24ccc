using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Encrypt;

/// <summary>Per-connection, ordered: plaintext chunk in, ciphertext chunk out (salt/IV first). Returns the input's buffer.</summary>
internal static class EncryptStage
{
    public static TransformBlock<Chunk, Chunk> Create(IStreamEncryptor encryptor, StageOptions options, CancellationToken cancellationToken) =>
        new(plain =>
        {
            try
            {
                cancellationToken.ThrowIfCancellationRequested(); // torn down: the chunk is dropped
                var output = Chunk.RentBuffer(encryptor.MaxOutputSize(plain.Length));
                var written = encryptor.Encrypt(plain.Span, output);
                return new Chunk(output, written);
            }
            finally
            {
                plain.Return();
            }
        }, BlockOptions.Ordered(options));
}
