using System.Diagnostics;
using System.Net;
using System.Text;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A real shadowsocks-libev process (ss-server, ss-local or ss-tunnel) on loopback, killed on dispose.
/// Missing binaries fail the test loudly: CI installs shadowsocks-libev.
/// </summary>
internal sealed class LibevPeer : IAsyncDisposable
{
    /// <summary>The methods shadowsocks-libev 3.3.5 accepts (its <c>-h</c> list).</summary>
    public static readonly string[] Methods =
    [
        "rc4-md5", "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "aes-128-cfb", "aes-192-cfb", "aes-256-cfb",
        "aes-128-ctr", "aes-192-ctr", "aes-256-ctr", "camellia-128-cfb", "camellia-192-cfb", "camellia-256-cfb",
        "bf-cfb", "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305", "salsa20", "chacha20", "chacha20-ietf",
    ];

    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private LibevPeer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    public static async Task<LibevPeer> StartAsync(string tool, params string[] args)
    {
        var path = new[] { "/usr/bin", "/usr/local/bin", "/bin" }.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"{tool} not found: install shadowsocks-libev (apt-get install shadowsocks-libev; .ci/run does)");
        var port = LoopbackPorts.Next();
        var info = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var portFlag = tool == "ss-server" ? "-p" : "-l";
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.ArgumentList.Add(portFlag);
        info.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var process = Process.Start(info)!;
        var peer = new LibevPeer(process, port);
        process.OutputDataReceived += (_, e) => peer.Append(e.Data);
        process.ErrorDataReceived += (_, e) => peer.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await peer.WaitListeningAsync(port);
        if (args.Contains("-u"))
        {
            // ss-libev binds its UDP port only after it listens on TCP (a name lookup comes between the two): a
            // datagram sent as soon as the TCP port listens could find nothing bound, and the test waited for its
            // answer until it gave up.
            await peer.WaitListeningAsync(port, udp: true);
        }

        if (args.Contains("--plugin"))
        {
            // ss-libev starts its SIP003 plugin and listens without waiting for it: ss-local took its port about 10 ms
            // before obfs-local took the plugin's, and a request in between was reset (a failure seen once in CI).
            await peer.WaitListeningAsync(await peer.PluginPortAsync());
        }

        return peer;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.AppendLine(line);
            }
        }
    }

    /// <summary>
    /// Waits until the port is listening (or, with <paramref name="udp"/>, bound for UDP), without connecting (a probe
    /// connection would reach the destination).
    /// </summary>
    private async Task WaitListeningAsync(int port, bool udp = false)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (_process.HasExited)
            {
                break;
            }

            var properties = System.Net.NetworkInformation.IPGlobalProperties.GetIPGlobalProperties();
            if ((udp ? properties.GetActiveUdpListeners() : properties.GetActiveTcpListeners()).Any(e => e.Port == port))
            {
                return;
            }

            await Task.Delay(10);
        }

        throw new InvalidOperationException($"{_process.StartInfo.FileName} did not listen on {port}{(udp ? " (UDP)" : "")}: {Log()}");
    }

    /// <summary>
    /// The loopback port between ss-libev and its plugin (<c>SS_LOCAL_PORT</c> in the plugin's environment): the
    /// plugin listens there for ss-local, ss-server there for the plugin. Read once the child has exec'd the plugin.
    /// </summary>
    private async Task<int> PluginPortAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10) && !_process.HasExited)
        {
            foreach (var child in Hosts.ProcessTree.Children(_process.Id))
            {
                try
                {
                    if (Hosts.ProcessTree.Environment(child).TryGetValue("SS_LOCAL_PORT", out var port))
                    {
                        return int.Parse(port, System.Globalization.CultureInfo.InvariantCulture);
                    }
                }
                catch (IOException)
                {
                    // The child ended meanwhile (or is not readable yet): look again.
                }
            }

            await Task.Delay(10);
        }

        throw new InvalidOperationException($"{_process.StartInfo.FileName} started no plugin: {Log()}");
    }

    private string Log()
    {
        lock (_log)
        {
            return _log.ToString();
        }
    }
}
