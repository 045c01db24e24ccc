using System.Runtime.InteropServices;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Verbs;

namespace Shadowsocks.Pipeline.Hosts;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        using var stop = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Stop(context, stop));
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Stop(context, stop));
        return await RunAsync(args, Console.Out, Console.Error, stop.Token).ConfigureAwait(false);
    }

    internal static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken stop)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            output.WriteLine(Usage.General);
            return args.Length == 0 ? ExitCodes.Usage : ExitCodes.Ok;
        }

        var verb = args[0];
        try
        {
            var options = ParsedArguments.Parse(args[1..]);
            if (options.Has("-h") || options.Has("--help"))
            {
                output.WriteLine(verb is "local" or "server" or "tunnel" ? Usage.Relay : Usage.General);
                return ExitCodes.Ok;
            }

            return verb switch
            {
                "methods" => MethodsVerb.Run(output),
                "genkey" => GenKeyVerb.Run(options, output),
                "local" or "server" or "tunnel" => await RelayVerb.RunAsync(verb, options, output, error, stop).ConfigureAwait(false),
                "demo" => await DemoVerb.RunAsync(options, output, error, stop).ConfigureAwait(false),
                _ => throw new UsageException($"{verb}: unknown verb; one of local, server, tunnel, demo, methods, genkey"),
            };
        }
        catch (UsageException e)
        {
            error.WriteLine($"shadowsocks: {e.Message}");
            return ExitCodes.Usage;
        }
    }

    private static void Stop(PosixSignalContext context, CancellationTokenSource stop)
    {
        context.Cancel = true;
        stop.Cancel();
    }
}
