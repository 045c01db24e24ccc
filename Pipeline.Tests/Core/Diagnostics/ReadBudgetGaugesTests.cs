using System.Diagnostics.Metrics;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Diagnostics;

public sealed class ReadBudgetGaugesTests
{
    /// <summary>Far above what the relays of tests running beside this one count, so their share cannot be mistaken for it.</summary>
    private const int Many = 1_000_000;

    [Fact]
    public void TheGauges_ReportARegisteredBudget_OnceEvenIfTwoRelaysShareIt_AndForgetItWhenDisposed()
    {
        var budget = new ReadBudget(ReadBudget.DefaultBytes);
        for (var i = 0; i < Many; i++)
        {
            budget.Enter();
        }

        budget.Handed(2 * Many);
        using (ReadBudgetGauges.Register(budget))
        using (ReadBudgetGauges.Register(budget)) // the server's listeners share one budget
        {
            var (busy, inFlight) = Observe();
            Assert.InRange(busy, Many, (2 * Many) - 1);
            Assert.InRange(inFlight, 2 * Many, (4 * Many) - 1);
        }

        var (busyAfter, inFlightAfter) = Observe();
        Assert.InRange(busyAfter, 0, Many - 1);
        Assert.InRange(inFlightAfter, 0, Many - 1);
    }

    /// <summary>The gauges' current values, read through a MeterListener as an exporter would.</summary>
    private static (int Busy, int InFlight) Observe()
    {
        int busy = -1, inFlight = -1;
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name.StartsWith("pipeline.read_budget.", StringComparison.Ordinal))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        meters.SetMeasurementEventCallback<int>((instrument, measurement, _, _) =>
        {
            if (instrument.Name == "pipeline.read_budget.busy")
            {
                busy = measurement;
            }
            else if (instrument.Name == "pipeline.read_budget.in_flight")
            {
                inFlight = measurement;
            }
        });
        meters.Start();
        meters.RecordObservableInstruments();
        return (busy, inFlight);
    }
}
