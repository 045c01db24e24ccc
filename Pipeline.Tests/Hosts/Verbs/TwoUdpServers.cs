using System.Net;
using Shadowsocks.Pipeline.Tests.Loopback;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// Two real <c>server -u</c> processes on loopback with one method and key, for a local or tunnel given both (<c>-s A
/// -s B</c>): the arguments that name them, the line the relay says when its UDP moves from the first to the second, and
/// the wait for that line while TCP connections find the first one gone.
/// </summary>
internal sealed class TwoUdpServers : IDisposable
{
    private TwoUdpServers(HostProcess first, IPEndPoint firstAt, HostProcess second, IPEndPoint secondAt)
    {
        (First, FirstAt, Second, SecondAt) = (first, firstAt, second, secondAt);
    }

    public HostProcess First { get; }

    public IPEndPoint FirstAt { get; }

    public HostProcess Second { get; }

    public IPEndPoint SecondAt { get; }

    /// <summary>The relay's arguments naming both servers, the first first (and <c>-p</c>, which each <c>-s</c>'s port overrides).</summary>
    public string[] ServerArgs => ["-s", $"127.0.0.1:{Port(FirstAt.Port)}", "-s", $"127.0.0.1:{Port(SecondAt.Port)}", "-p", Port(FirstAt.Port)];

    /// <summary>The relay's warning when its UDP leaves the first server for the second.</summary>
    public string MovedLine => $"udp: server 127.0.0.1:{Port(FirstAt.Port)} failed: UDP moves to 127.0.0.1:{Port(SecondAt.Port)}";

    /// <summary>Starts both; <paramref name="secondArgs"/> go to the second only (<c>--metrics</c>, say).</summary>
    public static async Task<TwoUdpServers> StartAsync(string method, string key, params string[] secondArgs)
    {
        var environment = new Dictionary<string, string>();
        var (first, firstAt) = await HostProcess.StartAsync(environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", key, "-m", method, "--forbidden-ip", "");
        try
        {
            var (second, secondAt) = await HostProcess.StartAsync(environment,
                ["server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", key, "-m", method, "--forbidden-ip", "", .. secondArgs]);
            return new TwoUdpServers(first, firstAt, second, secondAt);
        }
        catch
        {
            first.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Once the first server is stopped: runs <paramref name="connect"/> (a TCP connection through the relay: the first
    /// refuses it and its attempts open its circuit) until <paramref name="relay"/> says its UDP moved, once a second at
    /// most; fails at <paramref name="cancellationToken"/>.
    /// </summary>
    public async Task UntilMovedAsync(HostProcess relay, Func<Task> connect, CancellationToken cancellationToken)
    {
        while (!relay.Output.Contains(MovedLine, StringComparison.Ordinal))
        {
            Assert.False(cancellationToken.IsCancellationRequested, $"no line saying UDP moved within the deadline: {relay.Output}"); // bounds a failure only
            await connect();
            await relay.WaitForOutputAsync(MovedLine, TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>
    /// Sends with <paramref name="send"/> until <paramref name="tryReceive"/> (a wait of a second or so) has an answer;
    /// a datagram on its way during a move may be lost. Fails at <paramref name="cancellationToken"/>.
    /// </summary>
    public static async Task<byte[]> UntilAnsweredAsync(Func<Task> send, Func<Task<byte[]?>> tryReceive, CancellationToken cancellationToken)
    {
        while (true)
        {
            Assert.False(cancellationToken.IsCancellationRequested, "no answer through the second server within the deadline"); // bounds a failure only
            await send();
            if (await tryReceive() is { } answer)
            {
                return answer;
            }
        }
    }

    public void Dispose()
    {
        First.Dispose();
        Second.Dispose();
    }
}
