using System.Text;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// The program's output or error stream in the background (<c>-f</c>): every line still goes where it went (the parent
/// passes the first ones on to the terminal; after it exits they go nowhere), and to <see cref="Syslog"/> as well.
/// A line's severity is that of the console logger's level word it starts with (<c>DEBUG:</c>, <c>INFO:</c>,
/// <c>WARN:</c>, <c>ERROR:</c>, <c>CRIT:</c>; <see cref="LogLineFormatter"/>), else the stream's: informational for
/// output, error for the error stream.
/// </summary>
internal sealed class SyslogWriter : TextWriter
{
    private readonly TextWriter _inner;
    private readonly Syslog _syslog;
    private readonly int _severity;
    private readonly StringBuilder _line = new();

    public SyslogWriter(TextWriter inner, Syslog syslog, int severity)
    {
        _inner = inner;
        _syslog = syslog;
        _severity = severity;
    }

    public override Encoding Encoding => _inner.Encoding;

    public override void Write(char value) => Write(value.ToString());

    public override void Write(string? value)
    {
        if (value is null)
        {
            return;
        }

        WriteToInner(value);
        var start = 0;
        for (var newline = value.IndexOf('\n', StringComparison.Ordinal); newline >= 0; newline = value.IndexOf('\n', start))
        {
            Append(value, start, newline - start);
            EndLine();
            start = newline + 1;
        }

        Append(value, start, value.Length - start);
    }

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

    public override void WriteLine(string? value) => Write(value + Environment.NewLine);

    public override void Flush() => FlushInner();

    /// <summary>Part of a line; one that never ends is sent in pieces of at most a syslog line's size.</summary>
    private void Append(string value, int start, int count)
    {
        _line.Append(value, start, count);
        if (_line.Length >= Syslog.MaxLineBytes)
        {
            EndLine();
        }
    }

    private void EndLine()
    {
        var length = _line.Length;
        while (length > 0 && _line[length - 1] == '\r')
        {
            length--;
        }

        var line = _line.ToString(0, length);
        _line.Clear();
        if (line.Length > 0)
        {
            _syslog.Send(SeverityOf(line), line); // never throws: a line that cannot go is dropped and counted
        }
    }

    /// <summary>The severity of a logger's line, by the level word it starts with (<c>WARN: ...</c>), else the stream's.</summary>
    private int SeverityOf(string line)
    {
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0)
        {
            var word = line.AsSpan(0, colon);
            foreach (var level in LogLineFormatter.Levels)
            {
                if (word.SequenceEqual(LogLineFormatter.Word(level)))
                {
                    return LogLineFormatter.Severity(level);
                }
            }
        }

        return _severity;
    }

    private void WriteToInner(string value)
    {
        try
        {
            _inner.Write(value);
        }
        catch (IOException)
        {
            // The parent has gone: the terminal no longer hears us; syslog still does.
        }
    }

    private void FlushInner()
    {
        try
        {
            _inner.Flush();
        }
        catch (IOException)
        {
            // As above.
        }
    }
}
