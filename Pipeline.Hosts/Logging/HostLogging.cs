using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Shadowsocks.Pipeline.Hosts.Service;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// The program's logging on Microsoft.Extensions.Logging: one line per event on the console, debug with <c>-v</c>;
/// no colour codes under systemd or when the output is not a terminal, and no timestamps under systemd or in the
/// background (the journal or syslog adds its own). When the output is the journal's stream (<see cref="JournalStream"/>,
/// not merely a parent named systemd) each line starts with its syslog priority
/// (<c>&lt;4&gt;</c> for a warning), which the journal takes as the entry's priority, so that
/// <c>journalctl -p warning</c> finds the warnings (without it every line is priority 6, info).
/// Nothing logged carries a password or key: the settings are logged by name and value only for non-secret fields.
/// </summary>
internal static class HostLogging
{
    public static ILoggerFactory Create(bool verbose) => Create(verbose, JournalStream.IsConnected(1));

    internal static ILoggerFactory Create(bool verbose, bool systemd)
    {
        var plain = systemd || Console.IsOutputRedirected;
        return LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);
            if (systemd)
            {
                builder.AddSystemdConsole(options => options.TimestampFormat = null); // the journal's own timestamps
                return;
            }

            builder.AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.ColorBehavior = plain ? LoggerColorBehavior.Disabled : LoggerColorBehavior.Default;
                options.TimestampFormat = Daemon.IsChild ? null : "HH:mm:ss.fff "; // syslog's (-f)
                options.UseUtcTimestamp = false;
            });
        });
    }
}
