using System.Globalization;
using System.Text;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// The error stream under systemd: each line starts with a syslog priority (<c>&lt;3&gt;</c>), which the journal takes
/// as the entry's priority (as it does for the console logger's lines), so that a refused reload or a settings warning
/// is not filed as info. A line that already starts with a priority is left as it is.
/// </summary>
internal sealed class JournalPriorityWriter(TextWriter inner, int severity) : TextWriter
{
    private readonly string _prefix = $"<{severity.ToString(CultureInfo.InvariantCulture)}>";
    private bool _atLineStart = true;

    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value) => Write(value.ToString());

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

    public override void Write(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        var text = new StringBuilder(value.Length + _prefix.Length);
        var start = 0;
        while (start < value.Length)
        {
            var newline = value.IndexOf('\n', start);
            var end = newline < 0 ? value.Length : newline + 1;
            if (_atLineStart && value[start] != '\n' && !(value[start] == '<' && end - start > 2 && char.IsAsciiDigit(value[start + 1])))
            {
                text.Append(_prefix);
            }

            text.Append(value, start, end - start);
            _atLineStart = newline >= 0;
            start = end;
        }

        inner.Write(text.ToString());
    }

    public override void WriteLine(string? value) => Write(value + Environment.NewLine);

    public override void Flush() => inner.Flush();
}
