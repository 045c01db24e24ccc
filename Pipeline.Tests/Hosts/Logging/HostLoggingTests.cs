using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Hosts.Logging;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// Under systemd every console line carries its syslog priority (<c>&lt;4&gt;</c> for a warning), as the journal reads
/// it; elsewhere the lines stay as they were (<c>warn: ...</c>). Without the prefix the journal files every line,
/// warnings included, at priority 6 (info), and <c>journalctl -p warning</c> shows none of them.
/// </summary>
[Collection(nameof(ConsoleCaptureCollection))]
public sealed class HostLoggingTests
{
    [Fact]
    public void UnderSystemd_EachLineStartsWithItsPriority_WithoutTimestampOrColour()
    {
        var output = Capture(systemd: true);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["<6>shadowsocks[0] stopped", "<4>shadowsocks[0] a warning", "<3>shadowsocks[0] an error"], lines);
    }

    [Fact]
    public void ElsewhereInAPipe_TheLinesKeepTheirLevelWords()
    {
        var output = Capture(systemd: false);
        Assert.Contains("warn: shadowsocks[0] a warning", output, StringComparison.Ordinal);
        Assert.DoesNotContain("<4>", output, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", output, StringComparison.Ordinal);
    }

    private static string Capture(bool systemd)
    {
        var original = Console.Out;
        using var captured = new StringWriter();
        Console.SetOut(captured);
        try
        {
            using (var loggers = HostLogging.Create(verbose: false, systemd))
            {
                var log = loggers.CreateLogger("shadowsocks");
                log.LogInformation("stopped");
                log.LogWarning("a warning");
                log.LogError("an error");
            } // disposing the factory writes out the console logger's queue

            return captured.ToString().Replace("\r", "", StringComparison.Ordinal);
        }
        finally
        {
            Console.SetOut(original);
        }
    }
}
