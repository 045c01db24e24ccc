using Shadowsocks.Pipeline.Hosts;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

/// <summary><c>-a USER</c>: the server goes on as USER once its port is open (the program as a child process: never this one).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class UserSwitchTests
{
    [Fact]
    public async Task StartedAsRoot_TheServerGoesOnAsNobody_AndRelays_OtherwiseItIsRefused()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var port = Port(LoopbackPorts.Next());
        string[] server = ["server", "-s", "127.0.0.1", "-p", port, "-k", "user", "-m", "aes-256-gcm", "--forbidden-ip", "", "-a", "nobody"];
        if (!IsRoot())
        {
            // Not root (a developer's machine): the switch cannot happen, and the program says so before listening.
            var error = new StringWriter();
            Assert.Equal(2, await Program.RunAsync(server, new StringWriter(), error, cancel.Token));
            Assert.StartsWith("shadowsocks: -a: switching to 'nobody' needs root", error.ToString());
            return;
        }

        await using var destination = new EchoDestination();
        var environment = new Dictionary<string, string>();

        // The JIT build goes on loading its assemblies after the switch, so nobody must be able to read them: a copy in
        // a world-readable directory (the checkout may sit under /root, which nobody cannot enter).
        var copy = Directory.CreateTempSubdirectory("shadowsocks-user-");
        try
        {
            foreach (var file in Directory.GetFiles(AppContext.BaseDirectory))
            {
                File.Copy(file, Path.Combine(copy.FullName, Path.GetFileName(file)));
            }

            File.SetUnixFileMode(copy.FullName, (UnixFileMode)0b111_101_101); // rwxr-xr-x
            await RelaysAsNobodyAsync(Path.Combine(copy.FullName, "shadowsocks.dll"), server, port, destination, environment, cancel.Token);
        }
        finally
        {
            copy.Delete(recursive: true);
        }
    }

    private static async Task RelaysAsNobodyAsync(
        string program, string[] server, string port, EchoDestination destination, Dictionary<string, string> environment, CancellationToken cancellationToken)
    {
        var (host, _) = await HostProcess.StartAsync("dotnet", environment, [program, .. server]);
        using var hostProcess = host;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-s", "127.0.0.1", "-p", port, "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "user", "-m", "aes-256-gcm");
        using var __ = local;
        var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancellationToken);
        using var ___ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 64 * 1024, cancellationToken);

        var nobody = NobodyId();
        foreach (var thread in Directory.GetDirectories($"/proc/{host.Id}/task"))
        {
            // Every thread (pool workers, readiness loop, GC) runs as nobody: real, effective, saved and filesystem uid.
            var uids = File.ReadAllLines(Path.Combine(thread, "status")).Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            Assert.Equal(["Uid:", nobody, nobody, nobody, nobody], uids.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        }
    }

    [Fact]
    public async Task WithAPlugin_ThePluginRunsAsTheUserToo_SoTheServiceCanStopIt()
    {
        // Left as root, the plugin could not be signalled once the service had become nobody: it would outlive it.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        var port = Port(LoopbackPorts.Next());
        string[] server = ["server", "-s", "127.0.0.1", "-p", port, "-k", "user", "-m", "aes-256-gcm", "--forbidden-ip", "", "-a", "nobody",
            "--plugin", "obfs-server", "--plugin-opts", "obfs=http"];
        if (!IsRoot())
        {
            var error = new StringWriter();
            Assert.Equal(2, await Program.RunAsync(server, new StringWriter(), error, cancel.Token));
            Assert.StartsWith("shadowsocks: -a: switching to 'nobody' needs root", error.ToString());
            return;
        }

        await using var destination = new EchoDestination();
        var copy = Directory.CreateTempSubdirectory("shadowsocks-user-");
        try
        {
            foreach (var file in Directory.GetFiles(AppContext.BaseDirectory))
            {
                File.Copy(file, Path.Combine(copy.FullName, Path.GetFileName(file)));
            }

            File.SetUnixFileMode(copy.FullName, (UnixFileMode)0b111_101_101); // rwxr-xr-x
            var (host, _) = await HostProcess.StartAsync("dotnet", new Dictionary<string, string>(), [Path.Combine(copy.FullName, "shadowsocks.dll"), .. server]);
            using var hostProcess = host;
            var plugin = Assert.Single(ProcessTree.Children(host.Id));
            var nobody = NobodyId();
            var uids = File.ReadAllLines($"/proc/{plugin}/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            Assert.Equal(["Uid:", nobody, nobody, nobody, nobody], uids.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries));

            await using var local = await LibevPeer.StartAsync("ss-local", "-s", "127.0.0.1", "-p", port, "-k", "user", "-m", "aes-256-gcm",
                "--plugin", "obfs-local", "--plugin-opts", "obfs=http;obfs-host=example.com");
            var (socket, reply) = await Socks5TestClient.ConnectAsync(local.EndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            using (socket)
            {
                Assert.Equal(0, reply);
                await Transfer.EchoRoundTripAsync(socket, 16 * 1024, cancel.Token, halfClose: false);
            }

            var (_, exitCode) = await host.StopAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(0, exitCode);
            for (var i = 0; i < 100 && Directory.Exists($"/proc/{plugin}"); i++)
            {
                await Task.Delay(50, cancel.Token);
            }

            Assert.False(Directory.Exists($"/proc/{plugin}"), "the plugin outlived the service");
        }
        finally
        {
            copy.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AnUnknownUser_IsRefusedBeforeAnyPortOpens()
    {
        var error = new StringWriter();
        var output = new StringWriter();
        var code = await Program.RunAsync(
            ["server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "user", "-m", "aes-256-gcm", "-a", "no-such-user-here"],
            output, error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Equal("shadowsocks: -a: no user 'no-such-user-here' on this machine", error.ToString().Trim());
        Assert.DoesNotContain("listening", output.ToString());
    }

    [Fact]
    public async Task AnUnknownUser_FromTheConfigFile_IsRefusedNamingTheKeyAndTheFile()
    {
        // Said as "user:" alone it named no file; a flag's value is said as "-a:" (above), as every other refusal says where.
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, $$"""{ "server": "127.0.0.1", "server_port": {{Port(LoopbackPorts.Next())}}, "password": "user", "user": "no-such-user-here" }""");
            var error = new StringWriter();
            var output = new StringWriter();
            Assert.Equal(2, await Program.RunAsync(["server", "-c", file], output, error, CancellationToken.None));
            Assert.Equal($"shadowsocks: user: in {file}, no user 'no-such-user-here' on this machine", error.ToString().Trim());
            Assert.DoesNotContain("listening", output.ToString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static bool IsRoot() =>
        File.ReadAllLines("/proc/self/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t')[2] == "0";

    private static string NobodyId() =>
        File.ReadAllLines("/etc/passwd").Select(l => l.Split(':')).Single(f => f[0] == "nobody")[2];
}
