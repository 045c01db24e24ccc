using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Hosts.Logging;
using Shadowsocks.Pipeline.Stages.Connect;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// The lines about a local's fallback servers name the error as the socket gave it, although the counter they follow
/// (<c>pipeline.server_circuit_changes</c>) carries only a bounded reason.
/// </summary>
public sealed class ServerCircuitLogTests
{
    [Fact]
    public async Task AFirstServerThatRefuses_IsWarnedOfWithItsError_AndSaidBackInUseOnceItAnswers()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var logger = new LinesLogger();
        using var log = new ServerCircuitLog(logger);
        using var fallback = new TcpListener(IPAddress.Loopback, 0);
        fallback.Start();
        var first = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next()); // nothing listens there yet
        var time = new ManualTimeProvider(); // retries off: their delays would wait on it
        var servers = new ServerFailover([first, fallback.LocalEndpoint], TimeSpan.FromSeconds(10), retries: 0, time);

        for (var i = 0; i < 5; i++)
        {
            var (socket, _) = await servers.ConnectAsync(OpenAsync, cancel.Token);
            socket.Dispose();
        }

        // The listener hears the whole process: other tests' circuits are left out by the server's name.
        Assert.Equal(
            [$"server {first} failed (ConnectionRefused): skipped for 30 s, connections go to the other servers (all are tried when every one is skipped); then tried again"],
            About(first));

        using var back = new TcpListener(first);
        back.Start();
        time.Advance(TimeSpan.FromSeconds(31)); // the break is over: the next connection tries the first server
        var (again, at) = await servers.ConnectAsync(OpenAsync, cancel.Token);
        again.Dispose();
        Assert.Equal(first, at);
        Assert.Equal($"server {first} answers again: back in use", About(first)[^1]);
        Assert.Equal(2, About(first).Count);

        List<string> About(IPEndPoint server) => [.. logger.Lines.Where(l => l.StartsWith($"server {server} ", StringComparison.Ordinal))];
    }

    private static async ValueTask<Socket> OpenAsync(EndPoint server, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(server, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
