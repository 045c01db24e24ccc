using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Dns;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Connect;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Resolve;

/// <summary>
/// The server's lookup of a destination's name, and a client that goes away meanwhile. A client that resets, during
/// its lookup or while it waits for a lookup slot, ends its session and frees its slot (it was noticed only when the
/// lookup ended: the slot wait and the resolver's 8 s); one that only half-closes after its request is still served.
/// </summary>
public sealed class ClientGoneDuringLookupTests
{
    private const int Clients = 20;

    private const int Slots = 4;

    [Fact]
    public async Task Resolve_ClientsThatResetDuringTheirLookupsOrTheWaitForASlot_EndTheirSessions_AndFreeTheSlots()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dns = new FakeDnsServer(static _ => Task.FromResult(Enumerable.Empty<(byte[], bool)>())); // reads and drops
        using var resolver = ResolverOf(dns);
        var options = RelayChain.Options("aes-256-gcm", "client gone during lookup", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Pipeline = PipelineOptions.Default with { Resolve = new StageOptions(Slots, 64) }, // four lookups; sixteen wait for a slot
            ConnectTimeout = TimeSpan.FromMinutes(10), // the slot wait's bound
            IdleTimeout = TimeSpan.FromMinutes(10),
        };
        await using var server = new ServerTcpRelay(options, resolver, ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        var run = Guid.NewGuid().ToString("N")[..8];
        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < Clients; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(server.LocalEndPoint, cancel.Token);
                await client.SendAsync(FirstRequest.For(options, ShadowsocksAddress.FromHost($"n{i}.{run}.test", 80)), SocketFlags.None, cancel.Token);
            }

            // Every request read by the server (its sockets' queues empty), and the lookups that have slots asked.
            while (server.ActiveSessions < Clients || UnreadOn(server.LocalEndPoint.Port) > 0 || dns.Queries < Slots)
            {
                await Task.Delay(20, cancel.Token);
            }
        }
        finally
        {
            clients.ForEach(FirstRequest.Reset);
        }

        // Within a sweep of the watch: every session is gone, those in a lookup and those waiting for a slot.
        while (server.ActiveSessions > 0)
        {
            Assert.False(cancel.IsCancellationRequested, $"{server.ActiveSessions} sessions left after their clients reset");
            await Task.Delay(50, CancellationToken.None);
        }

        // Their slots are free: the next connection's lookup is asked at once, not after theirs.
        var asked = dns.Queries;
        using var next = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await next.ConnectAsync(server.LocalEndPoint, cancel.Token);
        await next.SendAsync(FirstRequest.For(options, ShadowsocksAddress.FromHost($"next.{run}.test", 80)), SocketFlags.None, cancel.Token);
        while (dns.Queries == asked)
        {
            await Task.Delay(20, cancel.Token);
        }
    }

    [Fact]
    public async Task Resolve_AClientThatResetsDuringItsLookup_EndsTheLookup_SoTheNextLookupIsNotASecondInFlight()
    {
        // One slot. The client's reset freed the slot at once, but its lookup went on (up to the resolver's 8 s, here
        // minutes), and the next connection's lookup ran beside it: after resets, more lookups in flight than slots.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dns = new FakeDnsServer(static _ => Task.FromResult(Enumerable.Empty<(byte[], bool)>())); // reads and drops
        using var resolver = ResolverOf(dns);
        var options = RelayChain.Options("aes-256-gcm", "lookup ends with its client", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Pipeline = PipelineOptions.Default with { Resolve = new StageOptions(1, 64) },
            ConnectTimeout = TimeSpan.FromMinutes(10),
            IdleTimeout = TimeSpan.FromMinutes(10),
        };
        await using var server = new ServerTcpRelay(options, resolver, ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var run = Guid.NewGuid().ToString("N")[..8];

        using (var first = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await first.ConnectAsync(server.LocalEndPoint, cancel.Token);
            await first.SendAsync(FirstRequest.For(options, ShadowsocksAddress.FromHost($"first.{run}.test", 80)), SocketFlags.None, cancel.Token);
            while (dns.Queries < 2 || QueriesOpenTo(dns.EndPoint.Port) < 2)
            {
                await Task.Delay(20, cancel.Token); // its lookup asked (A and AAAA), its sockets open
            }

            FirstRequest.Reset(first);
        }

        // Within a sweep of the watch the session ends, and with it its lookup: the queries' sockets close.
        while (server.ActiveSessions > 0 || QueriesOpenTo(dns.EndPoint.Port) > 0)
        {
            Assert.False(
                cancel.IsCancellationRequested,
                $"{server.ActiveSessions} sessions, {QueriesOpenTo(dns.EndPoint.Port)} query sockets left after the client reset");
            await Task.Delay(50, CancellationToken.None);
        }

        // The slot is free, and the next lookup is the only one in flight.
        using var second = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await second.ConnectAsync(server.LocalEndPoint, cancel.Token);
        await second.SendAsync(FirstRequest.For(options, ShadowsocksAddress.FromHost($"second.{run}.test", 80)), SocketFlags.None, cancel.Token);
        while (dns.Queries < 4)
        {
            await Task.Delay(20, cancel.Token);
        }

        Assert.Equal(2, QueriesOpenTo(dns.EndPoint.Port));
    }

    /// <summary>
    /// A resolver that asks only <paramref name="dns"/>, with waits far beyond the tests' deadlines: only a client's reset
    /// (or the answer a test lets out) ends a lookup.
    /// </summary>
    private static DnsResolver ResolverOf(FakeDnsServer dns) => new(
        new DnsResolverOptions
        {
            Servers = [dns.EndPoint],
            HostsPath = "/nonexistent/hosts",
            AttemptTimeout = TimeSpan.FromMinutes(10),
            TotalTimeout = TimeSpan.FromMinutes(10),
        },
        ProgramScheduler.Instance, TimeProvider.System);

    /// <summary>UDP sockets connected to <paramref name="port"/> on loopback (<c>/proc/net/udp</c>): the resolver's queries in flight to it.</summary>
    private static int QueriesOpenTo(int port)
    {
        var remote = $"0100007F:{port.ToString("X4", CultureInfo.InvariantCulture)}";
        return File.ReadLines("/proc/net/udp").Skip(1)
            .Count(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2] == remote);
    }

    [Fact]
    public async Task Resolve_AClientThatHalfClosesDuringTheLookup_IsStillConnected_AndGetsItsAnswer()
    {
        // As `printf 'GET / ...' | nc`: the request, then a FIN, before the name server has answered.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var dns = new FakeDnsServer(async query =>
        {
            await release.Task;
            return [(FakeDnsServer.Answer(query, [IPAddress.Loopback]), false)];
        });
        using var resolver = ResolverOf(dns);
        using var destination = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        destination.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        destination.Listen();
        var options = RelayChain.Options("aes-256-gcm", "client half-closed during lookup", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Forbidden = ForbiddenAddresses.None,
        };
        await using var server = new ServerTcpRelay(options, resolver, ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(server.LocalEndPoint, cancel.Token);
        var name = $"half-closed.{Guid.NewGuid():N}.test";
        await client.SendAsync(
            FirstRequest.For(options, ShadowsocksAddress.FromHost(name, ((IPEndPoint)destination.LocalEndPoint!).Port), "ping"u8), SocketFlags.None, cancel.Token);
        while (dns.Queries == 0)
        {
            await Task.Delay(20, cancel.Token); // the lookup is under way
        }

        client.Shutdown(SocketShutdown.Send);

        // A sweep of the watch (and more) with the FIN there: a watch that took a FIN for a reset would end it here.
        await Task.Delay(HalfOpenWatch.Period * 2, cancel.Token);
        release.SetResult();

        using var fromServer = await destination.AcceptAsync(cancel.Token);
        await HalfClosedExchange.AssertServedAsync(fromServer, client, options.Cipher.SaltSize, cancel.Token);
    }

    /// <summary>
    /// Established TCP sockets on loopback whose local port is <paramref name="port"/> (the server's side of its
    /// clients' connections) with bytes in their receive queue (<c>/proc/net/tcp</c>): requests not yet read.
    /// </summary>
    private static int UnreadOn(int port)
    {
        var local = $":{port.ToString("X4", CultureInfo.InvariantCulture)}";
        return File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(static l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f[1].EndsWith(local, StringComparison.Ordinal) && f[3] == "01"
                && int.Parse(f[4].Split(':')[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture) > 0);
    }
}
