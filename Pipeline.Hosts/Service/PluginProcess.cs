using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.InteropServices;
using Shadowsocks.Pipeline.Hosts.Configuration;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// A running SIP003 plugin: a child process that tunnels the TCP side. It is told where to listen and where to connect
/// through <c>SS_REMOTE_HOST</c>/<c>SS_REMOTE_PORT</c> (the public side: the server's address, or the address the
/// server's plugin listens on), <c>SS_LOCAL_HOST</c>/<c>SS_LOCAL_PORT</c> (the loopback side: our server's listener,
/// or where the local's plugin listens for us) and <c>SS_PLUGIN_OPTIONS</c>. Its output and error lines are passed on
/// to ours: it never holds our own descriptors, which in the background (<c>-f</c>) are pipes to a parent that has
/// exited (a plugin writing there would die of SIGPIPE). Disposing it ends it: SIGTERM, then SIGKILL if it is still
/// there after <see cref="TermGrace"/>.
/// </summary>
internal sealed partial class PluginProcess : IAsyncDisposable
{
    /// <summary>How long a plugin may take to exit after SIGTERM.</summary>
    public static readonly TimeSpan TermGrace = TimeSpan.FromSeconds(3);

    private const int Sigterm = 15;
    private readonly Process _process;

    private PluginProcess(PluginSettings settings, Process process)
    {
        Settings = settings;
        _process = process;
        Exited = WaitForExitAsync(process);
    }

    public PluginSettings Settings { get; }

    /// <summary>Completes with the plugin's exit code when it exits, whoever ended it.</summary>
    public Task<int> Exited { get; }

    public int Id => _process.Id;

    /// <summary>
    /// Starts the plugin, its output and error lines going to <paramref name="log"/>, as <paramref name="user"/> when
    /// given (<c>-a USER</c>: the program itself goes on as USER later, and could not stop a plugin left running as
    /// root); a program that cannot be started throws <see cref="System.ComponentModel.Win32Exception"/>.
    /// </summary>
    public static PluginProcess Start(PluginSettings settings, string remoteHost, int remotePort, IPEndPoint local, TextWriter log, string? user = null)
    {
        var info = new ProcessStartInfo(settings.Executable)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (user is not null)
        {
            info.UserName = user;
        }
        info.Environment["SS_REMOTE_HOST"] = remoteHost;
        info.Environment["SS_REMOTE_PORT"] = remotePort.ToString(CultureInfo.InvariantCulture);
        info.Environment["SS_LOCAL_HOST"] = local.Address.ToString();
        info.Environment["SS_LOCAL_PORT"] = local.Port.ToString(CultureInfo.InvariantCulture);
        if (settings.Options is { } options)
        {
            info.Environment["SS_PLUGIN_OPTIONS"] = options;
        }

        var process = Process.Start(info)!;
        process.StandardInput.Close();
        process.OutputDataReceived += (_, e) => PassOn(log, e.Data);
        process.ErrorDataReceived += (_, e) => PassOn(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new PluginProcess(settings, process);
    }

    /// <summary>
    /// Waits until the plugin listens on <paramref name="endPoint"/> (a TCP listener on its port, on that address or
    /// on every address), looking at the kernel's table rather than connecting: a test connection would go through
    /// the plugin to the other side. Null when it listens; otherwise why not (it exited, or not within <paramref name="limit"/>).
    /// </summary>
    public async Task<string?> WaitListeningAsync(IPEndPoint endPoint, TimeSpan limit, TimeProvider time, CancellationToken cancellationToken = default)
    {
        var started = time.GetTimestamp();
        while (true)
        {
            if (Exited.IsCompleted)
            {
                return $"plugin {Settings.Name} exited with code {await Exited.ConfigureAwait(false)} before it listened on {endPoint}";
            }

            if (Listens(endPoint))
            {
                return null;
            }

            if (time.GetElapsedTime(started) > limit)
            {
                return $"plugin {Settings.Name} did not listen on {endPoint} within {limit.TotalSeconds:0} s";
            }

            cancellationToken.ThrowIfCancellationRequested();
            await Task.WhenAny(Exited, Task.Delay(TimeSpan.FromMilliseconds(20), time, cancellationToken)).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!Exited.IsCompleted)
        {
            _ = kill(_process.Id, Sigterm);
            if (await Task.WhenAny(Exited, Task.Delay(TermGrace)).ConfigureAwait(false) != Exited)
            {
                _process.Kill(entireProcessTree: true);
            }

            try
            {
                await Exited.WaitAsync(TermGrace).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Killed and still not reaped: nothing more to do from here.
            }
        }

        _process.Dispose();
    }

    private static bool Listens(IPEndPoint endPoint) =>
        IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpListeners().Any(l =>
            l.Port == endPoint.Port && (l.Address.Equals(endPoint.Address) || l.Address.Equals(IPAddress.Any) || l.Address.Equals(IPAddress.IPv6Any)));

    private static void PassOn(TextWriter log, string? line)
    {
        if (line is not null)
        {
            lock (log)
            {
                log.WriteLine(line);
            }
        }
    }

    /// <summary>
    /// The exit itself, not the end of its output: <see cref="Process.WaitForExitAsync"/> also waits until every
    /// holder of the output pipes has closed them, and a plugin's own children (a wrapper script's) may hold them on.
    /// </summary>
    private static Task<int> WaitForExitAsync(Process process)
    {
        var exited = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.Exited += (_, _) => exited.TrySetResult(process.ExitCode);
        process.EnableRaisingEvents = true;
        if (process.HasExited)
        {
            exited.TrySetResult(process.ExitCode);
        }

        return exited.Task;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
