using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Hosts.Logging;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>The default-level warnings about failures the user must mend: the first at once, then one line a minute at most.</summary>
public sealed class FailureWarningTests
{
    [Fact]
    public void TheFirstFailure_IsOneLineAtOnce_LaterOnesAreCountedIntoOneLineAMinute()
    {
        var clock = new ManualTimeProvider();
        var logger = new LinesLogger(LogLevel.Warning);
        using var log = FailureWarning.Authentication(logger, clock);

        log.Count(1);
        Assert.Single(logger.Lines);
        Assert.Contains("another password or method", logger.Lines[0], StringComparison.Ordinal);

        // A flood of probes within the minute: counted, not logged (other tests' failures may count here too).
        for (var i = 0; i < 1000; i++)
        {
            log.Count(1);
        }

        clock.Advance(TimeSpan.FromSeconds(59));
        log.Count(1);
        Assert.Single(logger.Lines);

        clock.Advance(TimeSpan.FromSeconds(2));
        log.Count(1);
        Assert.Equal(2, logger.Lines.Count);
        Assert.Matches("^[0-9]{4,} more connections or datagrams failed authentication since the last such line", logger.Lines[1]);
    }

    [Fact]
    public void AServerThatDoesNotAnswer_IsNamedWithItsError_InTheFirstLineAndTheLatestInTheNext()
    {
        var clock = new ManualTimeProvider();
        var logger = new LinesLogger(LogLevel.Warning);
        using var log = FailureWarning.ServerUnreachable(logger, clock);

        // The listener hears the whole process's counter, and other tests' relays fail to reach servers too: their
        // failure can be the one a line names (same form, another server), so the lines are matched by form.
        log.Count(1, "cannot connect to server 127.0.0.1:8388: ConnectionRefused");
        log.Count(1, "cannot connect to server 127.0.0.1:8388: TimedOut");
        var first = Assert.Single(logger.Lines);
        Assert.Matches("^cannot connect to server [^ ]+: .+: check the server's address and port \\(-s, -p\\) and that it runs; later failures: one line a minute at most, -v logs each$", first);

        clock.Advance(FailureWarning.Interval);
        log.Count(1, "cannot connect to server 127.0.0.1:8388: HostNotFound");
        Assert.Equal(2, logger.Lines.Count);
        Assert.Matches("^[0-9]+ more connections could not reach the server since the last such line; the latest: cannot connect to server [^ ]+: .+$", logger.Lines[1]);
    }

    [Fact]
    public void ACollectorThatTakesNoExports_IsNamedWithItsError_InTheFirstLineAndTheLatestInTheNext()
    {
        var clock = new ManualTimeProvider();
        var logger = new LinesLogger(LogLevel.Warning);
        using var log = FailureWarning.TelemetryExport(logger, clock);

        // Matched by form: other tests' exporters may fail meanwhile, and the listener hears the whole process.
        log.Count(1, "traces to http://127.0.0.1:4318/v1/traces: ConnectionRefused");
        log.Count(1, "metrics to http://127.0.0.1:4318/v1/metrics: ConnectionRefused");
        var first = Assert.Single(logger.Lines);
        Assert.Matches("^cannot export (traces|metrics) to [^ ]+: [^;]+; check telemetry.otlp_endpoint and otlp_protocol \\(or OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL\\) and that the collector runs; later failures: one line a minute at most$", first);

        clock.Advance(FailureWarning.Interval);
        log.Count(1, "traces to http://127.0.0.1:4318/v1/traces: HTTP 404 NotFound");
        Assert.Equal(2, logger.Lines.Count);
        Assert.Matches("^[0-9]+ more telemetry exports failed since the last such line; the latest: (traces|metrics) to [^ ]+: .+$", logger.Lines[1]);
    }

    [Fact]
    public void ATraceFileThatCannotBeWritten_IsNamedWithItsError_AndSaysTheRelayGoesOn()
    {
        var clock = new ManualTimeProvider();
        var logger = new LinesLogger(LogLevel.Warning);
        using var log = FailureWarning.TraceFile(logger, clock);

        log.Count(1, "No space left on device : '/var/log/ss/shadowsocks-server-1.json'");
        log.Count(1, "No space left on device : '/var/log/ss/shadowsocks-server-1.json'");
        var first = Assert.Single(logger.Lines);
        Assert.Matches("^cannot write traces: .+; their spans are dropped and the relay goes on; free space there or give --traces \\(telemetry.traces\\) another folder; later failures: one line a minute at most$", first);

        clock.Advance(FailureWarning.Interval);
        log.Count(1, "Disk quota exceeded : '/var/log/ss/shadowsocks-server-1.json'");
        Assert.Equal(2, logger.Lines.Count);
        Assert.Matches("^[0-9]+ more batches of spans could not be written to the trace file since the last such line; the latest: .+$", logger.Lines[1]);
    }

    [Fact]
    public void RunningOutOfFileDescriptors_IsSaid_WithTheLimitAndHowToRaiseIt()
    {
        var logger = new LinesLogger(LogLevel.Warning);
        using var log = FailureWarning.OutOfFiles(logger, new ManualTimeProvider(), 1024);

        PipelineTelemetry.AcceptsPostponed.Add(1); // as the acceptor counts an accept that met EMFILE
        PipelineTelemetry.AcceptsPostponed.Add(1);
        var line = Assert.Single(logger.Lines);
        Assert.StartsWith("out of file descriptors (the open-file limit was 1024 at start)", line, StringComparison.Ordinal);
        Assert.Contains("-n / \"nofile\"", line, StringComparison.Ordinal);
    }

    [Fact]
    public void AcceptsPutOffForWantOfKernelMemory_AreNotCalledOutOfFileDescriptors()
    {
        // The acceptor counts ENOBUFS/ENOMEM (NoBufferSpaceAvailable) in the same counter as EMFILE: memory pressure
        // was said as "out of file descriptors", and the user told to raise nofile, which does nothing for it.
        // Counted here directly, with the reason the acceptor tags: other tests' acceptors add to the shared counter.
        var logger = new LinesLogger(LogLevel.Warning);
        var clock = new ManualTimeProvider();
        using var log = FailureWarning.OutOfFiles(logger, clock, 1024);

        log.Count(1, nameof(System.Net.Sockets.SocketError.NoBufferSpaceAvailable));
        var line = Assert.Single(logger.Lines);
        Assert.DoesNotContain("out of file descriptors", line, StringComparison.Ordinal);
        Assert.DoesNotContain("nofile", line, StringComparison.Ordinal);
        Assert.Contains("ENOBUFS", line, StringComparison.Ordinal);

        clock.Advance(FailureWarning.Interval);
        log.Count(1, nameof(System.Net.Sockets.SocketError.TooManyOpenSockets));
        Assert.Contains("raise -n", logger.Lines[1], StringComparison.Ordinal); // the latest was a descriptor
    }
}
