namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>
/// The config file's <c>pipeline</c> section: one <see cref="StageOptions"/> per stage.
/// Connection-level stages (handshake, resolve, connect) are shared by all connections: their parallelism is how many
/// connections may be in that stage at once. Data stages (encrypt, decrypt, forward) are per connection and ordered;
/// their capacity bounds the chunks in flight per direction; udp is the datagram stages' parallelism.
/// </summary>
internal sealed record PipelineOptions
{
    public StageOptions Handshake { get; init; } = new(256, 1024);

    public StageOptions Resolve { get; init; } = new(64, 1024);

    public StageOptions Connect { get; init; } = new(256, 1024);

    public StageOptions Encrypt { get; init; } = new(1, 2);

    public StageOptions Decrypt { get; init; } = new(1, 2);

    public StageOptions Forward { get; init; } = new(1, 2);

    public StageOptions Udp { get; init; } = new(Environment.ProcessorCount, 1024);

    public static PipelineOptions Default { get; } = new();
}
