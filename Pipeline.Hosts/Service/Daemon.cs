using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// <c>-f PID_FILE</c>: run the verb in the background, as ss-libev does. .NET cannot fork, so the program starts
/// itself again as a child in a new session (<c>setsid</c>), waits until the child has written the pid file and said
/// it listens (after its <c>-a USER</c> switch), and exits 0; the child removes the file when it stops. A child that
/// stops first is a failed start: its exit code and lines are passed on.
/// </summary>
internal static partial class Daemon
{
    /// <summary>Set in the child's environment; not a <c>SHADOWSOCKS_</c> variable, so it is no setting.</summary>
    public const string ChildVariable = "SSPIPELINE_BACKGROUND_CHILD";

    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(20);

    public static bool IsChild => Environment.GetEnvironmentVariable(ChildVariable) == "1";

    /// <summary>In the child: leave the terminal's session so that its Ctrl-C and hang-up do not reach us.</summary>
    public static void Detach()
    {
        try
        {
            _ = setsid();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // A libc without setsid: run on in the parent's session rather than not at all.
        }
    }

    /// <summary>In the parent: refuse if the pid file names a live process, start the child, wait for its pid file.</summary>
    public static async Task<int> StartAsync(string pidFile, TextWriter output, TextWriter error, CancellationToken stop)
    {
        if (PidFile.LiveOwner(pidFile) is { } running)
        {
            error.WriteLine($"shadowsocks: -f {pidFile}: already running as pid {running.ToString(CultureInfo.InvariantCulture)} (stop it first, or remove the file if that is not shadowsocks)");
            return ExitCodes.RuntimeFailure;
        }

        var commandLine = Environment.GetCommandLineArgs();
        var program = Environment.ProcessPath!;
        var info = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (Path.GetFileNameWithoutExtension(program) == "dotnet")
        {
            info.ArgumentList.Add(commandLine[0]); // dotnet shadowsocks.dll ...
        }

        foreach (var arg in commandLine.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment[ChildVariable] = "1";
        using var child = Process.Start(info)!;
        child.StandardInput.Close();
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        child.OutputDataReceived += (_, e) =>
        {
            Forward(output, e.Data);
            if (e.Data?.Contains(" listening on ", StringComparison.Ordinal) == true)
            {
                listening.TrySetResult();
            }
        };
        child.ErrorDataReceived += (_, e) => Forward(error, e.Data);
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();

        var clock = Stopwatch.StartNew();
        var pid = child.Id;
        while (clock.Elapsed < s_startTimeout && !stop.IsCancellationRequested)
        {
            if (child.HasExited)
            {
                child.WaitForExit(); // the last lines of its output
                return child.ExitCode;
            }

            // Up once it has written the file and said where it listens, which it says after the last step that can
            // stop it (-a USER): a child that stops before that line is a failed start, its exit code and lines passed on.
            // The line has been passed on before the task completes, so it is not lost when this process exits.
            if (listening.Task.IsCompleted && PidFile.Read(pidFile) == pid)
            {
                output.WriteLine($"shadowsocks: running in the background as pid {pid.ToString(CultureInfo.InvariantCulture)} (pid file {pidFile})");
                return ExitCodes.Ok;
            }

            await Task.Delay(20, CancellationToken.None).ConfigureAwait(false);
        }

        child.Kill(entireProcessTree: true);
        if (stop.IsCancellationRequested)
        {
            // SIGINT or SIGTERM while the child was starting: a stop asked for, not a failure.
            error.WriteLine($"shadowsocks: -f {pidFile}: stopped while the background process was starting; stopped it too");
            return ExitCodes.Ok;
        }

        error.WriteLine($"shadowsocks: -f {pidFile}: the background process did not start within {s_startTimeout.TotalSeconds:F0} s; stopped it");
        return ExitCodes.RuntimeFailure;
    }

    private static void Forward(TextWriter writer, string? line)
    {
        if (line is not null)
        {
            lock (writer)
            {
                writer.WriteLine(line);
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsid();
}
