using System.Diagnostics;
using System.Net;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts;

/// <summary>
/// The build the README recommends for production: <c>dotnet publish Pipeline.Hosts -c Release -r linux-x64</c>, a
/// native (AOT) executable. Published once per run (needs clang: .ci/run installs it), then run against
/// shadowsocks-libev both ways, with an AEAD method (OpenSSL) and a stream method (BouncyCastle), so what AOT
/// compilation could drop (reflection, native calls) is exercised by real traffic.
/// </summary>
public sealed class NativePublishTests
{
    private static readonly Lazy<Task<string>> s_published = new(PublishAsync);
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("aes-256-gcm")]
    [InlineData("camellia-256-cfb")]
    public async Task NativeLocal_ThroughLibevServer_EchoesEveryByte(string method)
    {
        var native = await s_published.Value;
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", "native", "-m", method);
        var (local, localAt) = await HostProcess.StartAsync(native, new Dictionary<string, string>(),
            "local", "-s", "127.0.0.1", "-p", Port(server.Port), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "native", "-m", method);
        using var _ = local;

        var (socket, reply) = await Socks5TestClient.ConnectAsync(localAt, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var __ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 1024 * 1024, cancel.Token, halfClose: false); // libev has no half-close
    }

    [Theory]
    [InlineData("chacha20-ietf-poly1305")]
    [InlineData("aes-128-ctr")]
    public async Task LibevLocal_ThroughNativeServer_EchoesEveryByte(string method)
    {
        var native = await s_published.Value;
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        var (server, serverAt) = await HostProcess.StartAsync(native, new Dictionary<string, string>(),
            "server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "native", "-m", method, "--forbidden-ip", "");
        using var _ = server;
        await using var local = await LibevPeer.StartAsync("ss-local", "-s", "127.0.0.1", "-p", Port(serverAt.Port), "-b", "127.0.0.1", "-k", "native", "-m", method);

        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.EndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        using var __ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 1024 * 1024, cancel.Token, halfClose: false); // libev has no half-close
    }

    private static async Task<string> PublishAsync()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Shadowsocks.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException($"Shadowsocks.sln not found above {AppContext.BaseDirectory}");
        }

        var output = Path.Combine(Path.GetTempPath(), "shadowsocks-native-test");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // No build servers: nothing may outlive the publish holding its output pipes.
        string[] args = ["publish", Path.Combine(root, "Pipeline.Hosts"), "-c", "Release", "-r", "linux-x64", "-o", output, "-nologo",
            "--disable-build-servers", "-nodeReuse:false", "-p:UseSharedCompilation=false"];
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var publish = Process.Start(info)!;
        var stdout = publish.StandardOutput.ReadToEndAsync();
        var stderr = publish.StandardError.ReadToEndAsync();
        // About 1.5 min on an idle 2-core machine; over 5 min seen beside four builds (a CI run during a working session).
        await publish.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(12));
        var executable = Path.Combine(output, "shadowsocks");
        if (publish.ExitCode != 0 || !File.Exists(executable))
        {
            throw new InvalidOperationException(
                $"dotnet publish (native AOT, needs clang: apt-get install clang; .ci/run does) failed with {publish.ExitCode}:\n{await stdout}\n{await stderr}");
        }

        return executable;
    }
}
