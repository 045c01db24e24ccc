using System.Diagnostics.Metrics;
using System.Net;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connect;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>A local survives its server going away and coming back, and fails over when it has several servers.</summary>
public sealed class ServerFailoverTests
{
    private static readonly IPEndPoint s_loopback = new(IPAddress.Loopback, 0);

    [Fact]
    public async Task ServerRestart_WhileTheLocalRuns_IsSurvived()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        var server = StartServer(s_loopback);
        var serverEndPoint = server.LocalEndPoint;
        await using var local = new LocalTcpRelay(RelayChain.Options("aes-256-gcm", "failover", s_loopback, serverEndPoint), ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        await AssertEchoAsync(local, destination, cancel.Token);

        await server.DisposeAsync();
        var (down, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
        down.Dispose();
        Assert.NotEqual(0, reply); // the server is down: the client is told so

        await using var restarted = StartServer(serverEndPoint); // same port
        await AssertEchoAsync(local, destination, cancel.Token);
    }

    [Fact]
    public async Task SeveralServers_DeadFirstOne_ConnectionsGoToTheNext()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var destination = new EchoDestination();
        await using var live = StartServer(s_loopback);
        var dead = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next());
        var options = RelayChain.Options("aes-256-gcm", "failover", s_loopback, dead) with { FallbackServers = [live.LocalEndPoint] };
        await using var local = new LocalTcpRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        for (var i = 0; i < 6; i++)
        {
            await AssertEchoAsync(local, destination, cancel.Token);
        }

        Assert.Equal(6, destination.Accepted);
    }

    [Fact]
    public async Task AFirstServerThatNeverAnswers_CostsOneTimeoutPerConnection_ThenIsSkipped()
    {
        // Timeouts were retried on the same server (three connect timeouts per connection) and, one connection at a
        // time, never opened its circuit: every connection waited three timeouts before the next server was tried.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        await using var live = StartServer(s_loopback);
        using var silent = new StalledListener();
        var timeout = TimeSpan.FromSeconds(2);
        var options = RelayChain.Options("aes-256-gcm", "failover", s_loopback, silent.EndPoint) with
        {
            FallbackServers = [live.LocalEndPoint],
            ConnectTimeout = timeout,
        };
        await using var local = new LocalTcpRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();

        for (var i = 0; i < 5; i++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await AssertEchoAsync(local, destination, cancel.Token);
            if (i < 2)
            {
                Assert.True(clock.Elapsed < 2.5 * timeout, $"connection {i}: {clock.Elapsed} (one timeout, then the next server)");
            }
            else
            {
                Assert.True(clock.Elapsed < timeout, $"connection {i}: {clock.Elapsed} (the silent server's circuit is open)");
            }
        }
    }

    [Fact]
    public async Task AServerNameWhoseFirstAddressNeverAnswers_IsReachedAtItsNextAddress()
    {
        // The local's clock is manual, so the silent address's attempt delay passes only when the test moves it: the
        // first connection gets through once it has; the second must get through with the clock standing still,
        // which it can only if the address that answered is now tried first.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        using var silent = new StalledListener(IPAddress.Parse("127.0.0.2"));
        await using var live = StartServer(new IPEndPoint(IPAddress.Loopback, silent.EndPoint.Port));
        var options = RelayChain.Options("aes-256-gcm", "failover", s_loopback, new DnsEndPoint("server.test", silent.EndPoint.Port)) with
        {
            ConnectTimeout = TimeSpan.FromSeconds(4),
        };
        var names = new SlowFirstResolver([IPAddress.Parse("127.0.0.2"), IPAddress.Loopback]);
        var time = new ManualTimeProvider();
        await using var local = new LocalTcpRelay(options, ProgramScheduler.Instance, time, serverNames: names);
        local.Start();

        var first = AssertEchoAsync(local, destination, cancel.Token);
        // The clock moves once the name has its answer, when the attempts start: moved from the start (40 turns of
        // 20 ms, whatever happened), it could pass by while a loaded machine was still in the handshake, and the
        // attempt's delay then never passed (the slow first answer here stands for that).
        await names.Answered.WaitAsync(TimeSpan.FromSeconds(20));
        for (var moved = TimeSpan.Zero; !first.IsCompleted && moved < TimeSpan.FromSeconds(2); moved += TimeSpan.FromMilliseconds(50))
        {
            await Task.Delay(20); // real time for the attempt to start, then its delay on the manual clock
            time.Advance(TimeSpan.FromMilliseconds(50));
        }

        await first.WaitAsync(TimeSpan.FromSeconds(20));
        await AssertEchoAsync(local, destination, cancel.Token).WaitAsync(TimeSpan.FromSeconds(20)); // the clock not moved
    }

    [Fact]
    public void Name_AHostHoldingAColon_IsBracketed()
    {
        Assert.Equal("[::1]:8388", ServerFailover.Name(new DnsEndPoint("::1", 8388))); // an IPv6 literal given as a name
        Assert.Equal("[::1]:8388", ServerFailover.Name(new IPEndPoint(IPAddress.IPv6Loopback, 8388)));
        Assert.Equal("[::1]:8388", ServerFailover.Name(new DnsEndPoint("[::1]", 8388))); // already bracketed: not twice
        Assert.Equal("server.test:8388", ServerFailover.Name(new DnsEndPoint("server.test", 8388)));
    }

    [Fact]
    public async Task EveryCircuitOpen_AFallbackServerThatCameBack_IsUsed_ThoughTheFirstNeverAnswers()
    {
        // With every circuit open only the first server was tried: one that never answers failed each connection after
        // the whole timeout, for up to 30 s, while the fallback server was back.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        using var silent = new StalledListener();
        var fallback = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next()); // nothing listens there yet
        var options = RelayChain.Options("aes-256-gcm", "failover", s_loopback, silent.EndPoint) with
        {
            FallbackServers = [fallback],
            ConnectTimeout = TimeSpan.FromSeconds(1),
        };
        await using var local = new LocalTcpRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        for (var i = 0; i < 2; i++) // each opens a circuit: the fallback's (refused thrice), then the silent one's (two timeouts)
        {
            var (down, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            down.Dispose();
            Assert.NotEqual(0, reply);
        }

        await using var back = StartServer(fallback);
        await AssertEchoAsync(local, destination, cancel.Token);
    }

    [Fact]
    public async Task AFirstServerThatRefuses_IsSaidToBeSkippedOnce_AndBackInUseOnceItAnswers()
    {
        // A dead first server went unsaid while the fallback answered; now its circuit opening and closing are counted
        // once each (the host's log lines), not per connection.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        await using var live = StartServer(s_loopback);
        var first = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.Next()); // nothing listens there yet
        var changes = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument == PipelineTelemetry.ServerCircuitChanges)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            var named = new Dictionary<string, object?>(tags.ToArray());
            if (Equals(named[TagNames.ServerAddress], first.ToString()))
            {
                lock (changes)
                {
                    changes.Add($"{named[TagNames.CircuitState]} {named[TagNames.Reason]}");
                }
            }
        });
        listener.Start();
        var time = new ManualTimeProvider(); // retries off: their delays would wait on it
        var options = RelayChain.Options("aes-256-gcm", "failover", s_loopback, first) with { FallbackServers = [live.LocalEndPoint], ConnectRetries = 0 };
        await using var local = new LocalTcpRelay(options, ProgramScheduler.Instance, time);
        local.Start();
        for (var i = 0; i < 5; i++)
        {
            await AssertEchoAsync(local, destination, cancel.Token);
        }

        Assert.Equal(["open refused"], Snapshot()); // a bounded reason: the error's text is the log line's (ServerCircuitLogTests)
        await using var back = StartServer(first);
        time.Advance(TimeSpan.FromSeconds(31)); // the circuit's break is over: the next connection tries the first server
        for (var i = 0; i < 3; i++)
        {
            await AssertEchoAsync(local, destination, cancel.Token);
        }

        Assert.Equal(["open refused", "closed answered"], Snapshot());

        List<string> Snapshot()
        {
            lock (changes)
            {
                return [.. changes];
            }
        }
    }

    private static ServerTcpRelay StartServer(IPEndPoint listen)
    {
        var server = new ServerTcpRelay(RelayChain.Options("aes-256-gcm", "failover", listen), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        return server;
    }

    private static async Task AssertEchoAsync(LocalTcpRelay local, EchoDestination destination, CancellationToken cancellationToken)
    {
        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancellationToken);
        using var _ = socket;
        Assert.Equal(0, reply);
        await Transfer.EchoRoundTripAsync(socket, 32 * 1024, cancellationToken);
    }

    /// <summary>
    /// Fixed addresses; the first answer takes a second of real time, as a loaded machine's handshake can before the
    /// connect, and <see cref="Answered"/> tells when it is given (the attempts start right after).
    /// </summary>
    private sealed class SlowFirstResolver(IPAddress[] addresses) : IDnsResolver
    {
        private readonly TaskCompletionSource _answered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _asked;

        public Task Answered => _answered.Task;

        public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _asked) == 1)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }

            _answered.TrySetResult();
            return addresses;
        }
    }
}
