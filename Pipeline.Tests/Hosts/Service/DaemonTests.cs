using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Tests.Loopback;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

/// <summary>
/// <c>-f PID_FILE</c> on the real program: it returns at once with the service running in the background and its pid
/// in the file; a second start with the same file is refused; a stale file is replaced; SIGTERM removes the file.
/// </summary>
public sealed class DaemonTests : IDisposable
{
    private readonly string _pidFile = Path.Combine(Path.GetTempPath(), $"ss-{Guid.NewGuid():N}.pid");
    private readonly List<int> _started = [];

    public void Dispose()
    {
        foreach (var pid in _started)
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }

        File.Delete(_pidFile);
    }

    [Fact]
    public async Task PidFile_Background_RefuseTwice_StaleReplaced_RemovedOnSigterm()
    {
        // A stale file: the pid of a process that has exited.
        using (var gone = Process.Start("true")!)
        {
            await gone.WaitForExitAsync();
            File.WriteAllText(_pidFile, $"{gone.Id}\n");
        }

        var port = LoopbackPorts.Next();
        var (exit, output, error) = await RunAsync("server", "-s", "127.0.0.1", "-p", Port(port), "-k", "daemon", "-m", "aes-256-gcm", "-f", _pidFile);
        Assert.True(exit == 0, $"exit {exit}: {output} {error}");
        Assert.Contains("listening on 127.0.0.1:", output, StringComparison.Ordinal);
        var pid = int.Parse(File.ReadAllText(_pidFile).Trim(), CultureInfo.InvariantCulture);
        _started.Add(pid);
        Assert.Contains($"running in the background as pid {pid}", output, StringComparison.Ordinal);
        using var daemon = Process.GetProcessById(pid);
        Assert.False(daemon.HasExited);
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await probe.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)); // the background process is serving
        }

        var (again, _, againError) = await RunAsync("server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "daemon", "-m", "aes-256-gcm", "-f", _pidFile);
        Assert.Equal(1, again);
        Assert.Contains($"already running as pid {pid}", againError, StringComparison.Ordinal);
        Assert.Equal(pid, int.Parse(File.ReadAllText(_pidFile).Trim(), CultureInfo.InvariantCulture));

        using (var kill = Process.Start("kill", ["-TERM", Port(pid)])!)
        {
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await daemon.WaitForExitAsync(timeout.Token);
        Assert.False(File.Exists(_pidFile), "the pid file outlived the process");
    }

    private static async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "shadowsocks.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }
}
