using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Connect;

/// <summary>
/// The server's connect to a destination that does not answer, and a client that goes away meanwhile. A client that
/// resets ends the connect (it held the session, its buffers and two descriptors until the connect timeout: a prober
/// or a flaky network piled them up); one that only half-closes after its request is still served.
/// </summary>
public sealed class ClientGoneDuringConnectTests
{
    private const int Clients = 20;

    [Fact]
    public async Task ToDestination_ClientsThatResetWhileTheConnectHangs_EndTheirConnects()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var stalled = new StalledListener();
        var options = RelayChain.Options("aes-256-gcm", "client gone", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Forbidden = ForbiddenAddresses.None,
            ConnectTimeout = TimeSpan.FromMinutes(10), // far beyond the test's deadline: only the client's reset ends these
        };
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var before = FirstRequest.SynSentTo(stalled.EndPoint.Port); // the listener's own fillers that wait

        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < Clients; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(server.LocalEndPoint, cancel.Token);
                var request = FirstRequest.For(options, ShadowsocksAddress.FromEndPoint(stalled.EndPoint), "GET / HTTP/1.0\r\n\r\n"u8); // a salt of its own: no replay
                await client.SendAsync(request, SocketFlags.None, cancel.Token);
            }

            // Every header is read and every connect under way (the server's SYNs wait, dropped by the full queue).
            while (FirstRequest.SynSentTo(stalled.EndPoint.Port) < before + Clients)
            {
                await Task.Delay(20, cancel.Token);
            }
        }
        finally
        {
            clients.ForEach(FirstRequest.Reset);
        }

        // Within a sweep of the watch: every session is gone, and its connect with it.
        while (server.ActiveSessions > 0 || FirstRequest.SynSentTo(stalled.EndPoint.Port) > before)
        {
            Assert.False(cancel.IsCancellationRequested,
                $"{server.ActiveSessions} sessions and {FirstRequest.SynSentTo(stalled.EndPoint.Port) - before} connects left after their clients reset");
            await Task.Delay(50, CancellationToken.None);
        }
    }

    [Fact]
    public async Task ToDestination_AClientThatHalfClosesWhileTheConnectHangs_IsStillConnected_AndGetsItsAnswer()
    {
        // As `printf 'GET / ...' | nc`: the request, then a FIN, before the destination has answered the SYN.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var fillers = new List<Socket>();
        for (var i = 0; i < 3; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            fillers.Add(filler);
            filler.Bind(new IPEndPoint(IPAddress.Loopback, 0)); // its port known before the connect completes
            try
            {
                filler.Connect(listener.LocalEndPoint!);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
            {
                // in progress, or stalled: either way the queue fills
            }
        }

        var fillerPorts = fillers.Select(f => ((IPEndPoint)f.LocalEndPoint!).Port).ToHashSet();
        var accepted = new List<Socket>();
        var options = RelayChain.Options("aes-256-gcm", "client half-closed", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Forbidden = ForbiddenAddresses.None,
            ConnectTimeout = TimeSpan.FromMinutes(10),
        };
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var before = FirstRequest.SynSentTo(port);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await client.ConnectAsync(server.LocalEndPoint, cancel.Token);
            await client.SendAsync(FirstRequest.For(options, ShadowsocksAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, port)), "ping"u8), SocketFlags.None, cancel.Token);
            while (FirstRequest.SynSentTo(port) <= before)
            {
                await Task.Delay(20, cancel.Token); // the server's connect is under way
            }

            client.Shutdown(SocketShutdown.Send);

            // A sweep of the watch (and more) with the FIN there: a watch that took a FIN for a reset would end it here.
            await Task.Delay(HalfOpenWatch.Period * 2, cancel.Token);

            // The destination takes its queue; the server's SYN, sent again, gets through.
            Socket? fromServer = null;
            while (fromServer is null)
            {
                var next = await listener.AcceptAsync(cancel.Token);
                accepted.Add(next);
                fromServer = fillerPorts.Contains(((IPEndPoint)next.RemoteEndPoint!).Port) ? null : next;
            }

            await HalfClosedExchange.AssertServedAsync(fromServer, client, options.Cipher.SaltSize, cancel.Token);
        }
        finally
        {
            fillers.ForEach(static f => f.Dispose());
            accepted.ForEach(static a => a.Dispose());
        }
    }
}
