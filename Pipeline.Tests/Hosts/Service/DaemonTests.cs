using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

/// <summary>
/// <c>-f PID_FILE</c> on the real program: it returns at once with the service running in the background and its pid
/// in the file; a second start with the same file is refused; a stale file is replaced; SIGTERM removes the file.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
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
        var pid = int.Parse(File.ReadAllText(_pidFile).Trim(), CultureInfo.InvariantCulture);
        _started.Add(pid); // stopped at the end even when an assertion below fails
        Assert.Contains("listening on 127.0.0.1:", output, StringComparison.Ordinal);
        Assert.Contains($"running in the background as pid {pid}", output, StringComparison.Ordinal);
        if (!File.Exists("/dev/log"))
        {
            Assert.Contains("no syslog listens at /dev/log: in the background, lines after start go nowhere", error, StringComparison.Ordinal);
        }

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

    [Fact]
    public async Task PidFile_GoesWithTheListeners_SoTheSameStartRunsAgain_WhileAConnectionFinishes()
    {
        // ss-manager's remove then add of a port (how it changes a password): the second start, with the same -f, was
        // refused ("already running") for as long as the first finished an open connection, and nothing served the port.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var environment = new Dictionary<string, string> { ["SHADOWSOCKS_PASSWORD"] = "daemon" };
        var port = LoopbackPorts.Next();
        string[] server = ["server", "-s", "127.0.0.1", "-p", Port(port), "-m", "aes-256-gcm", "-u", "--forbidden-ip", "", "--shutdown-grace", "60", "-f", _pidFile];
        var (exit, output, error) = await RunAsync(environment, server);
        Assert.True(exit == 0, $"exit {exit}: {output} {error}");
        var first = int.Parse(File.ReadAllText(_pidFile).Trim(), CultureInfo.InvariantCulture);
        _started.Add(first);
        var (tunnel, tunnelAt) = await HostProcess.StartAsync(environment, "tunnel", "-s", "127.0.0.1", "-p", Port(port), "-b", "127.0.0.1",
            "-l", Port(LoopbackPorts.Next()), "-L", $"127.0.0.1:{Port(destination.EndPoint)}", "-m", "aes-256-gcm");
        using var _ = tunnel;
        using var held = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await held.ConnectAsync(tunnelAt, cancel.Token);
        await Transfer.EchoRoundTripAsync(held, 1000, cancel.Token, halfClose: false); // open through the server, and stays open

        using (var kill = Process.Start("kill", ["-TERM", Port(first)])!)
        {
            await kill.WaitForExitAsync(cancel.Token);
        }

        while (PidFileNames(first))
        {
            await Task.Delay(100, cancel.Token); // until the listeners (and the file) are gone: bounded by the test's minute
        }

        (exit, output, error) = await RunAsync(environment, server);
        Assert.True(exit == 0, $"exit {exit}: {output} {error}");
        var second = int.Parse(File.ReadAllText(_pidFile).Trim(), CultureInfo.InvariantCulture);
        _started.Add(second);
        Assert.NotEqual(first, second);
        using var draining = Process.GetProcessById(first);
        Assert.False(draining.HasExited); // the first still finishes its connection
    }

    [Fact]
    public async Task ARefusedUserSwitch_IsAFailedStart_NotRunningInTheBackground()
    {
        // Root without CAP_SETUID/CAP_SETGID (setpriv drops them, as a container or a hardened unit may): -a passes
        // its check (root), the ports open and the pid file is written, then setgroups/setgid fail and the child
        // stops (exit 2). The parent had already seen the pid file and said "running in the background", exit 0, and
        // the refusal line went nowhere: a script or an init system believed it started.
        // Only root can be refused that way; without root, -a is refused before any port opens, which must not
        // report success either. As root (CI), setpriv (util-linux, essential on Debian) must be there.
        var root = IsRoot();
        Assert.True(!root || File.Exists("/usr/bin/setpriv"), "this test needs /usr/bin/setpriv (apt-get install util-linux) to drop root's CAP_SETUID/CAP_SETGID");
        var port = LoopbackPorts.Next();
        var (exit, output, error) = await RunUnderAsync(
            root ? ["/usr/bin/setpriv", "--bounding-set=-setuid,-setgid", "--inh-caps=-setuid,-setgid"] : [], new Dictionary<string, string>(),
            "server", "-s", "127.0.0.1", "-p", Port(port), "-k", "daemon", "-m", "aes-256-gcm", "-f", _pidFile, "-a", "nobody");
        Assert.True(exit == 2, $"exit {exit}: {output} {error}");
        Assert.Contains(root ? "shadowsocks: -a: cannot switch to 'nobody': errno" : "shadowsocks: -a: switching to 'nobody' needs root", error, StringComparison.Ordinal);
        Assert.DoesNotContain("running in the background", output, StringComparison.Ordinal);
        Assert.DoesNotContain(" listening on ", output, StringComparison.Ordinal);
        Assert.False(File.Exists(_pidFile), "a pid file outlived the failed start");
        Assert.Empty(ProcessesNaming(_pidFile)); // no background process left (the parent waited for the child's end)
    }

    /// <summary>The pids of the processes whose command line contains <paramref name="text"/>.</summary>
    private static List<string> ProcessesNaming(string text)
    {
        var found = new List<string>();
        foreach (var directory in Directory.GetDirectories("/proc"))
        {
            var pid = Path.GetFileName(directory);
            if (!pid.All(char.IsAsciiDigit))
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(directory, "cmdline")).Contains(text, StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile.
            }
        }

        return found;
    }

    private static bool IsRoot() =>
        File.ReadAllLines("/proc/self/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t')[2] == "0";

    private bool PidFileNames(int pid)
    {
        try
        {
            return File.ReadAllText(_pidFile).Trim() == Port(pid);
        }
        catch (FileNotFoundException)
        {
            return false;
        }
    }

    [Fact]
    public async Task InTheBackground_APluginThatKeepsWriting_LivesOn_AndEndsWithTheService()
    {
        // A plugin that serves (simple-obfs behind it) and writes a line every 50 ms, dying of SIGPIPE on a broken
        // pipe as a Go program does on its standard output (v2ray-plugin). In the background our own output is a pipe
        // to a parent that has exited: a plugin holding it would die at its next line, and the service with it.
        var directory = Directory.CreateTempSubdirectory("ss-daemon-plugin-");
        try
        {
            var obfsPid = Path.Combine(directory.FullName, "obfs.pid");
            var script = Path.Combine(directory.FullName, "chatty-plugin");
            File.WriteAllText(script, $"""
                #!/usr/bin/env python3
                import signal, subprocess, sys, time
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                obfs = subprocess.Popen(["obfs-server"])
                open("{obfsPid}", "w").write(str(obfs.pid))
                signal.signal(signal.SIGTERM, lambda *_: (obfs.kill(), sys.exit(0)))
                while True:
                    print("plugin tick", flush=True)
                    time.sleep(0.05)

                """);
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

            var port = LoopbackPorts.Next();
            var (exit, output, error) = await RunAsync(
                "server", "-s", "127.0.0.1", "-p", Port(port), "-k", "daemon", "-m", "aes-256-gcm", "-f", _pidFile, "--plugin", script, "--plugin-opts", "obfs=http");
            Assert.True(exit == 0, $"exit {exit}: {output} {error}");
            var pid = int.Parse(File.ReadAllText(_pidFile).Trim(), CultureInfo.InvariantCulture);
            _started.Add(pid);
            _started.Add(int.Parse(File.ReadAllText(obfsPid).Trim(), CultureInfo.InvariantCulture));

            await Task.Delay(TimeSpan.FromSeconds(1)); // some twenty lines after the parent has gone
            using var daemon = Process.GetProcessById(pid);

            // Still serving: the pid file is removed on the way out, and a process that ended with nobody left to
            // reap it (its parent exited) would still be listed, as a zombie.
            Assert.True(File.Exists(_pidFile), "the service stopped: its plugin died");
            Assert.NotEqual("Z", File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1][..1]);

            using (var kill = Process.Start("kill", ["-TERM", Port(pid)])!)
            {
                await kill.WaitForExitAsync();
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await daemon.WaitForExitAsync(timeout.Token);
            var obfs = int.Parse(File.ReadAllText(obfsPid).Trim(), CultureInfo.InvariantCulture);
            for (var i = 0; i < 100 && Directory.Exists($"/proc/{obfs}"); i++)
            {
                await Task.Delay(50);
            }

            Assert.False(Directory.Exists($"/proc/{obfs}"), "the plugin outlived the service");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task InTheBackground_EveryLine_GoesToSyslog_AlsoThoseAfterTheParentHasGone()
    {
        // A real Unix datagram socket stands in for /dev/log. The line that a SIGHUP sets off comes long after the
        // parent has exited (the process's output is then a pipe nobody reads): before, it went nowhere.
        var path = Path.Combine("/tmp", $"ss-syslog-{Guid.NewGuid():N}.sock"); // short: a socket path has 108 bytes
        using var daemon = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        daemon.Bind(new UnixDomainSocketEndPoint(path));
        try
        {
            var port = LoopbackPorts.Next();
            var (exit, output, error) = await RunAsync(
                new Dictionary<string, string> { ["SSPIPELINE_SYSLOG_SOCKET"] = path },
                "server", "-s", "127.0.0.1", "-p", Port(port), "-k", "daemon", "-m", "aes-256-gcm", "-f", _pidFile);
            Assert.True(exit == 0, $"exit {exit}: {output} {error}");
            var pid = int.Parse(File.ReadAllText(_pidFile).Trim(), CultureInfo.InvariantCulture);
            _started.Add(pid);
            Assert.Contains("listening on 127.0.0.1:", output, StringComparison.Ordinal); // the terminal still hears the start
            Assert.DoesNotContain("no syslog", error, StringComparison.Ordinal);

            var lines = new List<string>();
            var heard = await ReceiveUntilAsync(daemon, lines, "listening on 127.0.0.1:");
            Assert.True(heard, $"no listening line in syslog: {string.Join(" | ", lines)}");
            Assert.Matches($@"^<14>[A-Z][a-z]{{2}} [ 0-9]\d \d\d:\d\d:\d\d shadowsocks\[{pid}\]: ", lines[^1]);

            using (var hangUp = Process.Start("kill", ["-HUP", Port(pid)])!)
            {
                await hangUp.WaitForExitAsync();
            }

            heard = await ReceiveUntilAsync(daemon, lines, "SIGHUP: nothing to reload");
            Assert.True(heard, $"no reload line in syslog: {string.Join(" | ", lines)}");
            Assert.StartsWith("<11>", lines[^1], StringComparison.Ordinal); // said on the error stream

            using (var kill = Process.Start("kill", ["-TERM", Port(pid)])!)
            {
                await kill.WaitForExitAsync();
            }

            using var process = Process.GetProcessById(pid);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Receives syslog datagrams into <paramref name="lines"/> until one contains <paramref name="wanted"/> (10 s at most).</summary>
    private static async Task<bool> ReceiveUntilAsync(Socket daemon, List<string> lines, string wanted)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var n = await daemon.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                lines.Add(System.Text.Encoding.UTF8.GetString(buffer, 0, n));
                if (lines[^1].Contains(wanted, StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static Task<(int Exit, string Output, string Error)> RunAsync(params string[] args) => RunAsync(new Dictionary<string, string>(), args);

    private static Task<(int Exit, string Output, string Error)> RunAsync(Dictionary<string, string> environment, params string[] args) =>
        RunUnderAsync([], environment, args);

    /// <summary>Runs the program as the last argument(s) of <paramref name="wrapper"/> (e.g. setpriv and its options), or directly when empty.</summary>
    private static async Task<(int Exit, string Output, string Error)> RunUnderAsync(string[] wrapper, Dictionary<string, string> environment, params string[] args)
    {
        string[] command = [.. wrapper, "dotnet", Path.Combine(AppContext.BaseDirectory, "shadowsocks.dll"), .. args];
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        foreach (var arg in command.Skip(1))
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
