using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// The real ss-manager (shadowsocks-libev's multi-port controller) driving this program as its ss-server: it starts a
/// server per added port (with <c>-f</c>, <c>-c</c> and <c>--manager-address</c>), reports the traffic the server
/// sends it, and stops the server when the port is removed.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class ManagerTests
{
    [Fact]
    public async Task SsManager_AddsAPort_ReportsItsTraffic_RemovesIt()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var directory = Directory.CreateTempSubdirectory("ss-manager-");
        var managerPort = LoopbackPorts.Next();
        var serverPort = LoopbackPorts.Next();
        var wrapper = Path.Combine(directory.FullName, "ss-server");
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec dotnet {Path.Combine(AppContext.BaseDirectory, "shadowsocks.dll")} server \"$@\" --forbidden-ip ''\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var manager = Process.Start(new ProcessStartInfo("ss-manager",
            ["--manager-address", $"127.0.0.1:{managerPort}", "--executable", wrapper, "-m", "aes-256-gcm", "-s", "127.0.0.1", "-D", directory.FullName])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        manager.OutputDataReceived += static (_, _) => { };
        manager.ErrorDataReceived += static (_, _) => { };
        manager.BeginOutputReadLine();
        manager.BeginErrorReadLine();
        using var api = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 3000 };
        api.Connect(new IPEndPoint(IPAddress.Loopback, managerPort));
        try
        {
            await UntilAsync(() => IPGlobalProperties.GetIPGlobalProperties().GetActiveUdpListeners().Any(e => e.Port == managerPort), cancel.Token);
            Assert.Equal("ok", await AskAsync(api, $"add: {{\"server_port\": {serverPort}, \"password\": \"managed\"}}", cancel.Token));
            await UntilAsync(() => Listening(serverPort), cancel.Token); // our server, started by ss-manager

            await using var destination = new EchoDestination();
            var (local, localAt) = await HostProcess.StartAsync(new Dictionary<string, string>(),
                "local", "-s", "127.0.0.1", "-p", Port(serverPort), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "managed", "-m", "aes-256-gcm");
            using (local)
            {
                await Transfer.EchoThroughSocks5Async(localAt, destination.EndPoint.Port, 1, 64 * 1024, cancel.Token);
            }

            // The server reports every 10 s; ss-manager answers "ping" with what it last heard.
            long reported = 0;
            await UntilAsync(async () => (reported = Traffic(await AskAsync(api, "ping", cancel.Token), serverPort)) >= 2 * 64 * 1024, cancel.Token);
            Assert.True(reported >= 2 * 64 * 1024, $"reported {reported} bytes");

            Assert.Equal("ok", await AskAsync(api, $"remove: {{\"server_port\": {serverPort}}}", cancel.Token));
            await UntilAsync(() => !Listening(serverPort), cancel.Token); // stopped by ss-manager through the pid file
        }
        finally
        {
            manager.Kill();
            var pidFile = Path.Combine(directory.FullName, $".shadowsocks_{serverPort}.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture, out var pid))
            {
                using var left = Process.GetProcessById(pid);
                left.Kill();
            }

            directory.Delete(recursive: true);
        }
    }

    private static async Task<string> AskAsync(Socket api, string request, CancellationToken cancellationToken)
    {
        await api.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None, cancellationToken);
        var buffer = new byte[4096];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // ss-manager answers an "add" once system(3) has run the server's command line, and with -f our server's
        // parent returns when its child listens (or after 2 s): a JIT start, seconds on a loaded machine. 3 s was
        // too short there (a failure under a full test run beside another).
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        var received = await api.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.ASCII.GetString(buffer, 0, received).TrimEnd('\0');
    }

    private static long Traffic(string stat, int port) =>
        StatEntry().Matches(stat).Where(m => m.Groups[1].Value == Port(port)).Select(m => long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)).FirstOrDefault();

    private static bool Listening(int port) => IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpListeners().Any(e => e.Port == port);

    private static Task UntilAsync(Func<bool> condition, CancellationToken cancellationToken) => UntilAsync(() => Task.FromResult(condition()), cancellationToken);

    private static async Task UntilAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        while (!await condition())
        {
            await Task.Delay(200, cancellationToken);
        }
    }

    [GeneratedRegex("\"([0-9]+)\":([0-9]+)")]
    private static partial Regex StatEntry();
}
