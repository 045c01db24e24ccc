namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// Whether a standard stream goes to the journal, by systemd's own test (systemd.exec, <c>$JOURNAL_STREAM</c>): the
/// variable names the device and inode of the stream systemd connected, and the stream must still be that one. Only
/// then may a line start with its syslog priority (<c>&lt;4&gt;</c>): journald strips it, anything else shows it. A parent
/// named systemd is not enough: a process whose starter exited (<c>setsid</c>, <c>(cmd &amp;)</c>,
/// <c>start-stop-daemon --background</c>) is adopted by PID 1 or the user's <c>systemd --user</c>, with its output
/// still on a terminal, a pipe or a file; and a unit may send its output elsewhere (<c>StandardOutput=tty</c>,
/// <c>file:</c>, <c>systemd-run --pty</c>), when systemd sets no <c>JOURNAL_STREAM</c>.
/// </summary>
internal static class JournalStream
{
    public const string Variable = "JOURNAL_STREAM";

    /// <summary>Whether descriptor <paramref name="descriptor"/> (1: output, 2: error) is the journal's stream.</summary>
    public static bool IsConnected(int descriptor) => Matches(Environment.GetEnvironmentVariable(Variable), Target(descriptor));

    /// <summary>
    /// <paramref name="journalStream"/>: <c>DEVICE:INODE</c>; <paramref name="target"/>: what the descriptor's link in
    /// <c>/proc/self/fd</c> names (<c>socket:[INODE]</c> for a socket). <c>/proc</c> gives a socket's inode, not its
    /// device; sockets all live on one (sockfs), where each has an inode of its own.
    /// </summary>
    internal static bool Matches(string? journalStream, string? target) =>
        journalStream?.Split(':') is [{ Length: > 0 }, { Length: > 0 } inode] && target == $"socket:[{inode}]";

    private static string? Target(int descriptor)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{descriptor}").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            return null; // no /proc: not known to be the journal, so plain lines
        }
    }
}
