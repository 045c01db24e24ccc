namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>
/// The config file's <c>pipeline</c> section: one <see cref="StageOptions"/> per stage.
/// Connection-level stages (handshake, resolve, connect) are shared by all connections: their parallelism is how many
/// connections may be in that stage at once. Data stages (encrypt, decrypt, forward) are per connection and ordered;
/// their capacity bounds the chunks in flight per direction; udp is the datagram stages' parallelism.
/// Handshake and connect mostly wait on the network (the client's next bytes, the peer's SYN-ACK), so their
/// parallelism is set high: at 256, a burst of 1,000 connections under load queued behind handshakes waiting on slow
/// clients (p99 connect 0.6–1.7 s against 0.22–0.29 s at 1,024, `bench/e2e/load.py 1000 1 1`).
/// The data stages hold one chunk each: two measured no faster on bulk transfers and held a quarter more memory at
/// 1,000 busy connections (`bench/RESULTS.md`, 2026-11-26).
/// </summary>
internal sealed record PipelineOptions
{
    public StageOptions Handshake { get; init; } = new(1024, 4096);

    public StageOptions Resolve { get; init; } = new(64, 1024);

    public StageOptions Connect { get; init; } = new(1024, 4096);

    public StageOptions Encrypt { get; init; } = new(1, 1);

    public StageOptions Decrypt { get; init; } = new(1, 1);

    public StageOptions Forward { get; init; } = new(1, 1);

    public StageOptions Udp { get; init; } = new(Environment.ProcessorCount, 1024);

    /// <summary>
    /// <c>pipeline.read_budget_mib</c>: what the relay's busy TCP connections read and keep in flight together
    /// (<see cref="Multiplexing.ReadBudget"/>). Less bounds memory under many busy connections; more lets more of them
    /// read 128 KiB at a time with reading, ciphering and sending overlapped.
    /// </summary>
    public int ReadBudgetMiB { get; init; } = (int)(Multiplexing.ReadBudget.DefaultBytes >> 20);

    public static PipelineOptions Default { get; } = new();
}
