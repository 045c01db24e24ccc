using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// The console logger's lines, one per event, in the <see cref="LogLineForm"/> for where they go:
/// <c>2026-11-28 02:06:56.455 WARN: message</c> in a file or on a terminal, <c>WARN: message</c> in the background,
/// <c>&lt;4&gt;message</c> in the journal. No category (the program has two, <c>shadowsocks</c> and, with <c>-v</c>,
/// <c>shadowsocks.connections</c>, whose lines name themselves: <c>server connection 1.2.3.4:5 -&gt; ...</c>) and no
/// event id (none is given: every line said <c>[0]</c>). A message or exception over several lines is put on one, so
/// that a line is an event in a file, in <c>grep</c> and in syslog.
/// </summary>
internal sealed class LogLineFormatter(LogLineForm form, TimeProvider time) : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "shadowsocks";

    private const string Reset = "\u001b[0m";

    /// <summary>The levels in order, for reading a level word back (<see cref="SyslogWriter"/>).</summary>
    public static ReadOnlySpan<LogLevel> Levels => [LogLevel.Trace, LogLevel.Debug, LogLevel.Information, LogLevel.Warning, LogLevel.Error, LogLevel.Critical];

    /// <summary>The level's word at the start of a line (before its colon).</summary>
    public static string Word(LogLevel level) => level switch
    {
        LogLevel.Trace => "TRACE",
        LogLevel.Debug => "DEBUG",
        LogLevel.Information => "INFO",
        LogLevel.Warning => "WARN",
        LogLevel.Error => "ERROR",
        _ => "CRIT",
    };

    /// <summary>The level's syslog severity (RFC 5424), as the journal and syslog file the line.</summary>
    public static int Severity(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => Syslog.Debug,
        LogLevel.Information => Syslog.Informational,
        LogLevel.Warning => Syslog.Warning,
        LogLevel.Error => Syslog.Error,
        _ => Syslog.Critical,
    };

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null)
        {
            return;
        }

        var level = logEntry.LogLevel;
        if (form.Journal)
        {
            textWriter.Write($"<{Severity(level)}>");
        }
        else
        {
            textWriter.Write(form.Prefix(time)); // the time, as on the start line, where the lines have one

            var colour = form.Colour ? Colour(level) : null;
            textWriter.Write(colour);
            textWriter.Write(Word(level));
            textWriter.Write(':');
            textWriter.Write(colour is null ? null : Reset);
            textWriter.Write(' ');
        }

        WriteOneLine(textWriter, message);
        if (logEntry.Exception is { } exception)
        {
            textWriter.Write(string.IsNullOrEmpty(message) ? "" : " ");
            WriteOneLine(textWriter, exception.ToString());
        }

        textWriter.Write(Environment.NewLine);
    }

    private static string? Colour(LogLevel level) => level switch
    {
        LogLevel.Information => "\u001b[32m", // green
        LogLevel.Warning => "\u001b[1;33m", // bright yellow
        LogLevel.Error or LogLevel.Critical => "\u001b[1;31m", // bright red
        _ => null, // debug and trace: the terminal's own colour
    };

    private static void WriteOneLine(TextWriter writer, string text)
    {
        var rest = text.AsSpan();
        for (var end = rest.IndexOfAny('\r', '\n'); end >= 0; end = rest.IndexOfAny('\r', '\n'))
        {
            writer.Write(rest[..end]);
            writer.Write(' ');
            rest = rest[end..].StartsWith("\r\n") ? rest[(end + 2)..] : rest[(end + 1)..];
        }

        writer.Write(rest);
    }
}
