using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Hosts.Logging;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// The console lines, through the real console logger: in a file or on a terminal the local date and time to the
/// millisecond, the level word and the message (<c>2026-11-28 02:06:56.455 WARN: a warning</c>), as an operator reading
/// weeks of <c>&gt;&gt; ss.log</c> needs them, with no category or event id (<c>shadowsocks[0]</c>); colour on a terminal
/// only. Under systemd every line carries its syslog priority (<c>&lt;4&gt;</c> for a warning) and nothing else, as the
/// journal reads it: without the prefix the journal files every line, warnings included, at priority 6 (info), and
/// <c>journalctl -p warning</c> shows none of them. In the background the level word alone (syslog adds the time).
/// </summary>
[Collection(nameof(ConsoleCaptureCollection))]
public sealed class HostLoggingTests
{
    // 2026-11-27 18:06:56.455 UTC is 2026-11-28 02:06:56.455 at UTC+8: the local date, not the UTC one.
    private static readonly FixedLocalClock Clock = new(new DateTimeOffset(2026, 11, 27, 18, 6, 56, 455, TimeSpan.Zero), TimeSpan.FromHours(8));

    [Fact]
    public void UnderSystemd_EachLineStartsWithItsPriority_WithoutTimestampOrColour()
    {
        var lines = Capture(LogLineForm.For(journal: true, background: false, terminal: true));
        Assert.Equal(["<6>stopped", "<4>a warning", "<3>an error"], lines);
    }

    [Fact]
    public void InAFile_EachLineHasTheLocalDateAndTime_TheLevel_AndTheMessage_AndNothingElse()
    {
        var lines = Capture(LogLineForm.For(journal: false, background: false, terminal: false));
        Assert.Equal(
            ["2026-11-28 02:06:56.455 INFO: stopped", "2026-11-28 02:06:56.455 WARN: a warning", "2026-11-28 02:06:56.455 ERROR: an error"],
            lines);
    }

    [Fact]
    public void OnATerminal_TheLevelWordIsColoured_AndTheDateStays()
    {
        var lines = Capture(LogLineForm.For(journal: false, background: false, terminal: true));
        Assert.Equal(
            [
                "2026-11-28 02:06:56.455 \u001b[32mINFO:\u001b[0m stopped",
                "2026-11-28 02:06:56.455 \u001b[1;33mWARN:\u001b[0m a warning",
                "2026-11-28 02:06:56.455 \u001b[1;31mERROR:\u001b[0m an error",
            ],
            lines);
    }

    [Fact]
    public void InTheBackground_TheLinesStartWithTheirLevelWord_ForSyslog()
    {
        var lines = Capture(LogLineForm.For(journal: false, background: true, terminal: false));
        Assert.Equal(["INFO: stopped", "WARN: a warning", "ERROR: an error"], lines);
    }

    [Fact]
    public void AMessageOrExceptionOverSeveralLines_IsOneLine()
    {
        var lines = Capture(LogLineForm.For(journal: false, background: true, terminal: false), log =>
        {
            log.LogWarning("first\nsecond\r\nthird");
            log.LogError(new InvalidOperationException("went\nwrong"), "failed");
        });

        Assert.Equal(2, lines.Length);
        Assert.Equal("WARN: first second third", lines[0]);
        Assert.StartsWith("ERROR: failed System.InvalidOperationException: went wrong", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public void TheStartLinesPrefix_IsTheLoggersTime_OnlyWhereTheLinesAreStamped()
    {
        Assert.Equal("2026-11-28 02:06:56.455 ", LogLineForm.For(journal: false, background: false, terminal: false).Prefix(Clock));
        Assert.Equal("2026-11-28 02:06:56.455 ", LogLineForm.For(journal: false, background: false, terminal: true).Prefix(Clock));
        Assert.Equal("", LogLineForm.For(journal: false, background: true, terminal: false).Prefix(Clock));
        Assert.Equal("", LogLineForm.For(journal: true, background: false, terminal: false).Prefix(Clock));
    }

    private static string[] Capture(LogLineForm form, Action<ILogger>? write = null)
    {
        var original = Console.Out;
        using var captured = new StringWriter();
        Console.SetOut(captured);
        try
        {
            using (var loggers = HostLogging.Create(verbose: false, form, Clock))
            {
                var log = loggers.CreateLogger("shadowsocks");
                if (write is not null)
                {
                    write(log);
                }
                else
                {
                    log.LogInformation("stopped");
                    log.LogWarning("a warning");
                    log.LogError("an error");
                }
            } // disposing the factory writes out the console logger's queue

            return captured.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        finally
        {
            Console.SetOut(original);
        }
    }
}
