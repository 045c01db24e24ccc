using System.CommandLine;
using System.CommandLine.Help;
using System.Runtime.InteropServices;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Logging;
using Shadowsocks.Pipeline.Hosts.Service;
using Shadowsocks.Pipeline.Hosts.Verbs;

namespace Shadowsocks.Pipeline.Hosts;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        using var stop = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Stop(context, stop));
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Stop(context, stop));

        // In the background (-f) the output is a pipe to a parent that exits once we listen: every line goes to syslog
        // too, as ss-libev's do there (the console logger writes to Console.Out, so it is replaced, not only passed on).
        using var syslog = Daemon.IsChild ? Syslog.ForProcess() : null;
        if (syslog is not null)
        {
            Console.SetOut(TextWriter.Synchronized(new SyslogWriter(Console.Out, syslog, Syslog.Informational)));
            Console.SetError(TextWriter.Synchronized(new SyslogWriter(Console.Error, syslog, Syslog.Error)));
            if (!syslog.Reachable())
            {
                // Said while the parent still passes our lines on to the terminal.
                Console.Error.WriteLine($"shadowsocks: no syslog listens at {syslog.Path}: in the background, lines after start go nowhere (start rsyslog or systemd-journald, or run it under systemd without -f)");
            }
        }
        else if (JournalStream.IsConnected(2))
        {
            // The journal files a line by the priority it starts with (the console logger's have theirs): without one, info.
            Console.SetError(TextWriter.Synchronized(new JournalPriorityWriter(Console.Error, Syslog.Error)));
        }

        return await RunAsync(args, Console.Out, Console.Error, stop.Token).ConfigureAwait(false);
    }

    /// <summary>Parses the command line (System.CommandLine), runs the verb; exit 0 ok, 1 runtime failure, 2 usage or config error.</summary>
    internal static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken stop)
    {
        var root = CommandLine.Build((parsed, cancellationToken) => RunVerbAsync(parsed, output, error, cancellationToken));
        var result = root.Parse(args);
        try
        {
            if (result.Action is not HelpAction)
            {
                CommandLine.ThrowOnErrors(result);
            }

            var invocation = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
            return await result.InvokeAsync(invocation, stop).ConfigureAwait(false);
        }
        catch (UsageException e)
        {
            foreach (var warning in e.Warnings)
            {
                error.WriteLine($"shadowsocks: {warning}");
            }

            error.WriteLine($"shadowsocks: {e.Message}");
            return ExitCodes.Usage;
        }
    }

    private static async Task<int> RunVerbAsync(ParsedArguments args, TextWriter output, TextWriter error, CancellationToken stop) => args.Verb switch
    {
        "methods" => MethodsVerb.Run(output),
        "genkey" => GenKeyVerb.Run(args, output),
        "demo" => await DemoVerb.RunAsync(args, output, error, stop).ConfigureAwait(false),
        _ => await RelayVerb.RunAsync(args.Verb, args, output, error, stop).ConfigureAwait(false),
    };

    private static void Stop(PosixSignalContext context, CancellationTokenSource stop)
    {
        context.Cancel = true;
        stop.Cancel();
    }
}
