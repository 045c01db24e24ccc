using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Resolve;

/// <summary>
/// The server's connections waiting for a lookup slot while the name server never answers: each waits at most the
/// connect timeout from its header, then closes as a failed lookup. They waited for every lookup ahead of them (the
/// resolver's total, 8 s, each), holding their sockets and buffers all along.
/// </summary>
public sealed class LookupWaitTests
{
    private const int Clients = 12;

    [Fact]
    public async Task ConnectionsWaitingForASlot_WhileTheNameServerIsSilent_CloseAtTheConnectTimeout()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dns = new FakeDnsServer(static _ => Task.FromResult(Enumerable.Empty<(byte[], bool)>())); // never answers
        using var resolver = new DnsResolver(
            new DnsResolverOptions { Servers = [dns.EndPoint], HostsPath = "/nonexistent/hosts" }, ProgramScheduler.Instance, TimeProvider.System);
        var options = RelayChain.Options("aes-256-gcm", "lookup wait", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Pipeline = PipelineOptions.Default with { Resolve = new StageOptions(1, 4) }, // one lookup at a time; the rest wait, in the stage and before it
            ConnectTimeout = TimeSpan.FromSeconds(2),
            IdleTimeout = TimeSpan.FromMinutes(10),
        };
        await using var server = new ServerTcpRelay(options, resolver, ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        var clients = new List<Socket>();
        try
        {
            var run = Guid.NewGuid().ToString("N")[..8];
            for (var i = 0; i < Clients; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(server.LocalEndPoint, cancel.Token);
                await client.SendAsync(FirstRequest.For(options, ShadowsocksAddress.FromHost($"n{i}.{run}.test", 80)), SocketFlags.None, cancel.Token);
            }

            // Without the limit the last waited for eleven lookups of 8 s each (88 s); with it, 2 s and the first's 8 s.
            var buffer = new byte[16];
            foreach (var client in clients)
            {
                try
                {
                    Assert.Equal(0, await client.ReceiveAsync(buffer, SocketFlags.None, cancel.Token));
                }
                catch (SocketException)
                {
                    // closed with a reset: closed too
                }
            }

            while (server.ActiveSessions > 0)
            {
                await Task.Delay(20, cancel.Token);
            }
        }
        finally
        {
            clients.ForEach(static c => c.Dispose());
        }
    }
}
