using System.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Xunit.Abstractions;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// Load without loss: 1,000 concurrent connections, 1 MiB each way with SHA-256 checks, through our local and
/// server, twice in one process. Afterwards the descriptors are back to where they were and the resident memory of
/// the second round is within 20 % of the first. Runs alone (descriptor and memory counts are process-wide).
/// </summary>
[Collection(nameof(FileDescriptorCollection))]
public sealed class LoadTests(ITestOutputHelper output)
{
    private const int Connections = 1000;

    [Fact]
    public async Task ThousandConnections_TwiceInARow_NoLossNoLeak()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await using var destination = new EchoDestination();
        var budget = new ReadBudget(ReadBudget.DefaultBytes); // the default, shared here by local and server
        // Timeouts far above the chain's 5 s: this test asserts no loss under load, and on a loaded CI machine a
        // thousand clients in this process (hashing 1 MiB each way) can keep one from sending its SOCKS5 request for
        // seconds, which the local then rightly closes as a stalled handshake (seen once in CI: a reply of 0xFF, closed before the reply).
        await using var chain = RelayChain.Start("aes-128-gcm", tune: o => o with
        {
            ReadBudget = budget,
            HandshakeTimeout = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromMinutes(2),
            IdleTimeout = TimeSpan.FromMinutes(2),
        });

        // Warm up (thread pool, socket engine, pools) so the baseline is the steady state, not the cold start.
        await RoundAsync(chain, destination, 50, cancel.Token);
        await WaitUntilAsync(() => chain.Local.ActiveSessions == 0 && chain.Server.ActiveSessions == 0, cancel.Token);
        var baseline = OpenDescriptors();
        var before = Descriptors();

        var rss = new long[2];
        for (var round = 0; round < 2; round++)
        {
            var clock = Stopwatch.StartNew();
            await RoundAsync(chain, destination, Connections, cancel.Token);

            // Every session on both sides has ended: nothing is held for a finished connection.
            // (The budget's counts fall as the last chunks' owners let go, which can be a moment after the sessions end.)
            await WaitUntilAsync(() => chain.Local.ActiveSessions == 0 && chain.Server.ActiveSessions == 0 && budget.InFlight == 0 && budget.Busy == 0, cancel.Token);
            Assert.Equal(0, budget.InFlight); // a thousand connections' chunks (pumps held to one each for most of it) all counted out
            Assert.Equal(0, budget.Busy);
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            using (var self = Process.GetCurrentProcess())
            {
                rss[round] = self.WorkingSet64;
            }

            output.WriteLine($"round {round + 1}: {Connections} x 1 MiB each way in {clock.Elapsed.TotalSeconds:F1} s, RSS {rss[round] >> 20} MiB, managed heap {GC.GetTotalMemory(false) >> 20} MiB");
        }

        Assert.Equal(50 + (2 * Connections), destination.Accepted);
        await WaitUntilAsync(() => OpenDescriptors() <= baseline, cancel.Token);
        var extra = Descriptors().Except(before);
        Assert.True(OpenDescriptors() <= baseline, $"descriptors {OpenDescriptors()} > baseline {baseline}: {string.Join(", ", extra)}");
        Assert.True(rss[1] <= rss[0] * 1.2, $"resident memory grew from {rss[0] >> 20} MiB to {rss[1] >> 20} MiB");
    }

    /// <summary>Socket, pipe and event descriptors: what a leaked connection would hold. (Assemblies the runtime maps lazily, e.g. on a first DNS call, are files and do not count.)</summary>
    private static int OpenDescriptors() => Descriptors().Count(d => !d.Contains("->/", StringComparison.Ordinal));

    private static HashSet<string> Descriptors() =>
        [.. Directory.GetFiles("/proc/self/fd").Select(f => $"{Path.GetFileName(f)}->{new FileInfo(f).LinkTarget}")];

    private static Task RoundAsync(RelayChain chain, EchoDestination destination, int connections, CancellationToken cancellationToken) =>
        Task.WhenAll(Enumerable.Range(0, connections).Select(async _ =>
        {
            var (socket, reply) = await Socks5TestClient.ConnectAsync(chain.Local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancellationToken);
            using var __ = socket;
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 1 << 20, cancellationToken); // asserts the SHA-256 of what came back
        }));

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, cancellationToken);
        }
    }
}
