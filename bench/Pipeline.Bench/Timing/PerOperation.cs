using System.Diagnostics;

namespace Shadowsocks.Pipeline.Bench.Timing;

/// <summary>Runs one operation for a while on this thread, after a warm-up, and says what each run cost.</summary>
internal static class PerOperation
{
    /// <summary>
    /// Microseconds and bytes allocated (this thread) per run of <paramref name="operation"/>, over about
    /// <paramref name="seconds"/>, after 20,000 runs for the tiered JIT.
    /// </summary>
    public static (double Microseconds, double Bytes) Measure(double seconds, Action operation)
    {
        for (var i = 0; i < 20_000; i++)
        {
            operation(); // warm-up: tiered JIT
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        long count = 0;
        while (watch.Elapsed.TotalSeconds < seconds)
        {
            for (var i = 0; i < 1000; i++)
            {
                operation();
            }

            count += 1000;
        }

        return (watch.Elapsed.TotalMicroseconds / count, (GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)count);
    }
}
