using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// A start that fails half-way, after its relays or its plugin started, through an exception nobody expected: here
/// the start line written to a full disk (<c>/dev/full</c>), the first write to the output, which comes after the
/// ports, the plugin and the pid file. What was started stops before the exception goes on.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class StartFailureTests
{
    private const string Password = "start-failure-test";
    private const string Method = "aes-256-gcm";

    [Fact]
    public async Task Server_OutputFailsAfterThePluginStarted_ThePluginDiesWithTheProgram()
    {
        // A stand-in plugin that says its pid (before it listens: the program goes on as soon as it does) and then
        // takes the public port, as obfs-server would.
        var directory = Directory.CreateTempSubdirectory("ss-start-failure-");
        var pidFile = Path.Combine(directory.FullName, "plugin.pid");
        var plugin = Path.Combine(directory.FullName, "plugin");
        File.WriteAllText(plugin, $"""
            #!/usr/bin/env python3
            import os, socket, time
            open("{pidFile}", "w").write(str(os.getpid()))
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((os.environ["SS_REMOTE_HOST"], int(os.environ["SS_REMOTE_PORT"])))
            listener.listen()
            while True:
                time.sleep(1)

            """);
        File.SetUnixFileMode(plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var port = LoopbackPorts.Next();
        int? pluginPid = null;
        try
        {
            // The program's output on a full disk; no core file from the abort that an unhandled exception ends in.
            using var server = HostProcess.Launch("/bin/sh", new Dictionary<string, string>(),
                "-c", "ulimit -c 0; exec dotnet \"$0\" \"$@\" > /dev/full", Path.Combine(AppContext.BaseDirectory, "shadowsocks.dll"),
                "server", "-s", "127.0.0.1", "-p", Port(port), "-k", Password, "-m", Method, "--plugin", plugin);

            // As before: the exception is not caught, .NET reports it and aborts (SIGABRT, 128 + 6).
            Assert.Equal(134, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("Unhandled exception. System.IO.IOException", server.Output);

            Assert.True(File.Exists(pidFile), $"the plugin never started: {server.Output}");
            pluginPid = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
            Assert.False(Alive(pluginPid.Value), "the plugin outlived the program");

            // And so the next start finds the public port free.
            using var next = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            next.Bind(new IPEndPoint(IPAddress.Loopback, port));
            next.Listen();
        }
        finally
        {
            if (pluginPid is { } orphan && Alive(orphan))
            {
                using var process = System.Diagnostics.Process.GetProcessById(orphan);
                process.Kill();
            }

            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Server_OutputFailsAfterTheRelaysStarted_TheirPortsAreFreeWhenTheExceptionComesOut()
    {
        // In the same process (as the tests and demo run it), where a relay left running would hold its ports on.
        var port = LoopbackPorts.Next();
        await using var full = new StreamWriter(new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0)) { AutoFlush = true };
        await Assert.ThrowsAsync<IOException>(() => Program.RunAsync(
            ["server", "-s", "127.0.0.1", "-p", Port(port), "-k", Password, "-m", Method, "-u"], full, new StringWriter(), CancellationToken.None));

        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.Bind(new IPEndPoint(IPAddress.Loopback, port));
        tcp.Listen();
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
    }

    /// <summary>Running, not a zombie: <c>/proc/PID/stat</c>'s state, after the name in parentheses.</summary>
    private static bool Alive(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat").Split(") ")[1][0] != 'Z';
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
    }
}
