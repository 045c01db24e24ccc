using System.Globalization;
using Shadowsocks.Pipeline.Hosts.Logging;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// The syslog priority prefixes (<c>&lt;6&gt;</c>, <c>&lt;3&gt;</c>) are for the journal only: journald strips them, anything
/// else shows them. A parent named <c>systemd</c> does not mean the output goes to the journal: a process whose starter
/// exited (<c>setsid</c>, <c>(cmd &amp;)</c>, <c>start-stop-daemon --background</c>) is adopted by PID 1 or by the user's
/// <c>systemd --user</c>, both named systemd, with its output still on a terminal, a pipe or a file. systemd's own test
/// (systemd.exec, <c>$JOURNAL_STREAM</c>) is whether the stream is the one the variable names.
/// </summary>
public sealed class JournalStreamTests
{
    [Fact]
    public async Task AParentNamedSystemd_WithTheOutputOnAPipe_GetsPlainLines()
    {
        // A shell under the name "systemd" stands for PID 1 or systemd --user having adopted the program ("; :" keeps
        // the shell there as its parent rather than replaced by it).
        var folder = Directory.CreateTempSubdirectory("ss-parent-");
        try
        {
            var systemd = Path.Combine(folder.FullName, "systemd");
            File.CreateSymbolicLink(systemd, "/bin/sh");
            var program = Path.Combine(AppContext.BaseDirectory, "shadowsocks.dll");
            var port = LoopbackPorts.Next().ToString(CultureInfo.InvariantCulture);
            var (started, _) = await HostProcess.StartAsync(
                systemd, new Dictionary<string, string>(),
                "-c", $"dotnet '{program}' server -s 127.0.0.1 -p {port} -k x -m aes-256-gcm -v -n 512 --max-connections 100000; :");
            using var host = started;
            Assert.True(await host.WaitForOutputAsync("limits:", TimeSpan.FromSeconds(20)), host.Output);

            var lines = host.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains(lines, static l => l.StartsWith("shadowsocks: max_connections 100000", StringComparison.Ordinal)); // the error stream's
            Assert.Contains(lines, static l => l.Contains(" DEBUG: limits:", StringComparison.Ordinal)); // the logger's
            Assert.DoesNotContain(lines, static l => l.StartsWith('<'));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("9:4711", "socket:[4711]", true)] // the socket systemd connected
    [InlineData("9:4711", "socket:[47110]", false)] // another socket (a pipe to another program, a redirection)
    [InlineData("9:4711", "pipe:[4711]", false)]
    [InlineData("9:4711", "/dev/pts/3", false)] // a terminal (systemd-run --pty, StandardOutput=tty)
    [InlineData(null, "socket:[4711]", false)] // not started by systemd with the journal
    [InlineData("", "socket:[4711]", false)]
    [InlineData("9:4711", null, false)]
    public void TheStream_IsTheJournals_OnlyWhenItIsTheOneJournalStreamNames(string? journalStream, string? target, bool connected) =>
        Assert.Equal(connected, JournalStream.Matches(journalStream, target));
}
