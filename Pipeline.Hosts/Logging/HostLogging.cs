using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// The program's logging on Microsoft.Extensions.Logging: one line per event on the console, debug with <c>-v</c>, each
/// line in the <see cref="LogLineForm"/> for where the output goes (<see cref="LogLineFormatter"/>): the local date and
/// time and the level on a terminal or in a file (colour on a terminal only); no time under systemd or in the
/// background (the journal or syslog adds its own). When the output is the journal's stream (<see cref="JournalStream"/>,
/// not merely a parent named systemd) each line starts with its syslog priority
/// (<c>&lt;4&gt;</c> for a warning), which the journal takes as the entry's priority, so that
/// <c>journalctl -p warning</c> finds the warnings (without it every line is priority 6, info).
/// Nothing logged carries a password or key: the settings are logged by name and value only for non-secret fields.
/// </summary>
internal static class HostLogging
{
    public static ILoggerFactory Create(bool verbose, LogLineForm form, TimeProvider time) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);

        // The formatter is registered as an instance, its form and clock given: no formatter options to bind from
        // configuration (AddConsoleFormatter's way), nothing more for the native build's trimming to keep.
        builder.AddConsole(options => options.FormatterName = LogLineFormatter.FormatterName);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ConsoleFormatter>(new LogLineFormatter(form, time)));
    });
}
