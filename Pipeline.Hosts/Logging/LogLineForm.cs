using System.Globalization;
using Shadowsocks.Pipeline.Hosts.Service;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// How the program's console lines start, which depends on where they go:
/// <list type="bullet">
/// <item>a terminal, a file or a pipe (<c>&gt;&gt; ss.log 2&gt;&amp;1</c>, nohup, docker logs): the local date and time, to
/// the millisecond, then the level (<c>2026-11-28 02:06:56.455 INFO: stopped</c>, as ss-libev's
/// <c> 2026-11-28 02:06:56 INFO: ...</c>); the date on a terminal too, which may be a screen or tmux session that
/// lives for weeks; the level word coloured on a terminal only;</item>
/// <item>the background (<c>-f</c>, <see cref="Daemon.IsChild"/>): the level only (<c>WARN: ...</c>): syslog adds the
/// time, and <see cref="SyslogWriter"/> reads the level word for the line's severity;</item>
/// <item>the journal (<see cref="JournalStream"/>): the syslog priority only (<c>&lt;4&gt;...</c>), which the journal takes
/// as the entry's priority, adding the time itself.</item>
/// </list>
/// The start line (<c>... listening on ...</c>, written straight to the output) takes the same time prefix.
/// </summary>
/// <param name="Journal">Each line starts with its syslog priority, and nothing else.</param>
/// <param name="Stamped">Each line starts with the local date and time.</param>
/// <param name="Colour">The level word is coloured (ANSI codes).</param>
internal sealed record LogLineForm(bool Journal, bool Stamped, bool Colour)
{
    /// <summary>The form for this process's output (descriptor 1).</summary>
    public static LogLineForm ForProcess() => For(JournalStream.IsConnected(1), Daemon.IsChild, !Console.IsOutputRedirected);

    /// <summary>The form for output to the journal, in the background, or to a terminal (else a file or a pipe).</summary>
    public static LogLineForm For(bool journal, bool background, bool terminal) =>
        journal ? new(Journal: true, Stamped: false, Colour: false) : new(Journal: false, Stamped: !background, Colour: terminal && !background);

    /// <summary>What a line written straight to the output starts with: the time and a space when stamped, else nothing.</summary>
    public string Prefix(TimeProvider time) => Stamped ? Stamp(time.GetLocalNow()) + " " : "";

    /// <summary><c>2026-11-28 02:06:56.455</c>: the local date and time to the millisecond.</summary>
    public static string Stamp(DateTimeOffset localNow) => localNow.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture);
}
