using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// The program's logging on Microsoft.Extensions.Logging: one line per event on the console, debug with <c>-v</c>;
/// no colour codes and no timestamps under systemd (the journal adds its own) or when the output is not a terminal.
/// Nothing logged carries a password or key: the settings are logged by name and value only for non-secret fields.
/// </summary>
internal static class HostLogging
{
    public static ILoggerFactory Create(bool verbose)
    {
        var systemd = SystemdHelpers.IsSystemdService();
        var plain = systemd || Console.IsOutputRedirected;
        return LoggerFactory.Create(builder => builder
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information)
            .AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.ColorBehavior = plain ? LoggerColorBehavior.Disabled : LoggerColorBehavior.Default;
                options.TimestampFormat = systemd ? null : "HH:mm:ss.fff ";
                options.UseUtcTimestamp = false;
            }));
    }
}
