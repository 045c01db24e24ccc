using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Core.Diagnostics;

/// <summary>
/// The TCP relays' read budgets as gauges, summed over the relays of the process: <c>pipeline.read_budget.busy</c>
/// (directions of connections reading at full size) and <c>pipeline.read_budget.in_flight</c> (chunks read and not
/// yet sent). Together with the budget they tell whether busy connections run one chunk at a time (memory bound) or
/// overlap reading, ciphering and sending. Relays register their budget at start and drop it when disposed.
/// </summary>
internal static class ReadBudgetGauges
{
    private static readonly ConcurrentDictionary<object, ReadBudget> s_registered = new();

    private static readonly ObservableGauge<int> s_busy = PipelineTelemetry.Meter.CreateObservableGauge(
        "pipeline.read_budget.busy", () => Sum(static b => b.Busy), "{direction}", "Directions of TCP connections reading at full size (a burst or a bulk transfer).");

    private static readonly ObservableGauge<int> s_inFlight = PipelineTelemetry.Meter.CreateObservableGauge(
        "pipeline.read_budget.in_flight", () => Sum(static b => b.InFlight), "{chunk}", "TCP chunks read and not yet sent (being ciphered, queued, or being written).");

    /// <summary>Registers one relay's budget (relays sharing one count it once); dispose to remove it.</summary>
    public static IDisposable Register(ReadBudget budget)
    {
        _ = s_busy;
        _ = s_inFlight;
        var owner = new Registration();
        s_registered[owner] = budget;
        return owner;
    }

    private static int Sum(Func<ReadBudget, int> value) => s_registered.Values.Distinct().Sum(value);

    private sealed class Registration : IDisposable
    {
        public void Dispose() => s_registered.TryRemove(this, out _);
    }
}
