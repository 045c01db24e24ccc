using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connect;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Connect;

/// <summary>
/// Connection racing (RFC 8305) over real loopback sockets: a listener whose queue is full stands for an address that
/// never answers, a closed port for one that refuses. The attempt delay runs on a manual clock.
/// </summary>
public sealed class HappyEyeballsTests
{
    private static readonly TimeSpan s_wall = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ASilentFirstAddress_CostsOneAttemptDelay_ThenTheNextConnects()
    {
        using var silent = new StalledListener();
        using var live = Listen();
        var time = new ManualTimeProvider();

        var race = HappyEyeballs.ConnectAsync([silent.EndPoint, EndPointOf(live)], Open, time, CancellationToken.None);
        await Task.Delay(300); // real time: the silent attempt stays silent
        Assert.False(race.IsCompleted);
        time.Advance(HappyEyeballs.AttemptDelay - TimeSpan.FromMilliseconds(1));
        Assert.False(race.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));

        var (socket, index) = await race.WaitAsync(s_wall);
        using var _ = socket;
        Assert.Equal(1, index);
        using var accepted = await live.AcceptAsync().WaitAsync(s_wall);
        Assert.Equal(0, time.Pending); // the delay timer is gone, and no deadline of its own was set
    }

    [Fact]
    public async Task ARefusingFirstAddress_StartsTheNextAtOnce()
    {
        using var live = Listen();
        var time = new ManualTimeProvider();

        var (socket, index) = await HappyEyeballs.ConnectAsync([ClosedPort(), EndPointOf(live)], Open, time, CancellationToken.None).WaitAsync(s_wall);

        using var _ = socket;
        Assert.Equal(1, index); // with the clock never moved
    }

    [Fact]
    public async Task TheFirstThatAnswers_Wins_AndTheRestAreNeverTried()
    {
        using var first = Listen();
        using var second = Listen();
        var time = new ManualTimeProvider();

        var (socket, index) = await HappyEyeballs.ConnectAsync([EndPointOf(first), EndPointOf(second)], Open, time, CancellationToken.None).WaitAsync(s_wall);

        using var _ = socket;
        Assert.Equal(0, index);
        Assert.Equal(0, time.Pending); // the next attempt's delay ended with the race
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(second.Poll(200_000, SelectMode.SelectRead)); // nobody came to the second
    }

    [Fact]
    public async Task EveryAddressRefusing_ThrowsTheLastFailure()
    {
        var error = await Assert.ThrowsAsync<SocketException>(
            () => HappyEyeballs.ConnectAsync([ClosedPort(), ClosedPort(), ClosedPort()], Open, new ManualTimeProvider(), CancellationToken.None).WaitAsync(s_wall));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    [Fact]
    public async Task TheCallersDeadline_CancelsEveryAttempt()
    {
        using var silent1 = new StalledListener();
        using var silent2 = new StalledListener();
        var time = new ManualTimeProvider();
        using var deadline = new CancellationTokenSource();
        var opened = 0;
        var sockets = new List<Socket>();
        ValueTask<Socket> Counting(IPEndPoint target, CancellationToken token)
        {
            Interlocked.Increment(ref opened);
            return Open(target, token, sockets);
        }

        var race = HappyEyeballs.ConnectAsync([silent1.EndPoint, silent2.EndPoint], Counting, time, deadline.Token);
        time.Advance(HappyEyeballs.AttemptDelay);
        for (var waited = 0; Volatile.Read(ref opened) < 2 && waited < 500; waited++)
        {
            await Task.Delay(10); // the second attempt starts on the delay's continuation
        }

        await deadline.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => race.WaitAsync(s_wall));
        Assert.Equal(2, opened);
        Assert.Equal(0, time.Pending);
        for (var waited = 0; sockets.Any(IsOpen) && waited < 500; waited++)
        {
            await Task.Delay(10); // a cancelled attempt closes its socket as its wait ends
        }

        Assert.DoesNotContain(sockets, IsOpen);

        static bool IsOpen(Socket socket)
        {
            try
            {
                _ = socket.Available;
                return true;
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
        }
    }

    [Fact]
    public async Task ADeadlineAfterARefusal_SaysSo()
    {
        using var silent = new StalledListener();
        var time = new ManualTimeProvider();
        using var deadline = new CancellationTokenSource();
        var refused = ClosedPort();
        var refusal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        ValueTask<Socket> Watching(IPEndPoint target, CancellationToken token)
        {
            var attempt = Open(target, token).AsTask();
            if (target.Equals(refused))
            {
                _ = attempt.ContinueWith(_ => refusal.TrySetResult(), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }

            return new ValueTask<Socket>(attempt);
        }

        var race = HappyEyeballs.ConnectAsync([silent.EndPoint, refused], Watching, time, deadline.Token);
        time.Advance(HappyEyeballs.AttemptDelay); // the second starts, and is refused at once; the first stays silent
        await refusal.Task.WaitAsync(s_wall); // not a fixed wait: on a loaded machine the refusal can take longer
        Assert.False(race.IsCompleted);
        await deadline.CancelAsync();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => race.WaitAsync(s_wall));
        Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
    }

    [Fact]
    public void Interleave_AlternatesTheFamilies_StartingWithTheFirstAddresss()
    {
        var v6a = IPAddress.Parse("2001:db8::1");
        var v6b = IPAddress.Parse("2001:db8::2");
        var v4a = IPAddress.Parse("192.0.2.1");
        var v4b = IPAddress.Parse("192.0.2.2");
        var v4c = IPAddress.Parse("192.0.2.3");

        Assert.Equal([v6a, v4a, v6b, v4b, v4c], HappyEyeballs.Interleave([v6a, v6b, v4a, v4b, v4c]));
        Assert.Equal([v4a, v6a, v4b, v6b], HappyEyeballs.Interleave([v4a, v4b, v6a, v6b]));
        Assert.Equal([v4b, v4a], HappyEyeballs.Interleave([v4b, v4a]));
    }

    /// <summary>
    /// The server: a destination name with a silent address first and a live one second (same port, 127.0.0.2 and
    /// 127.0.0.1) is reached well inside the connect timeout, which is set longer than the test waits.
    /// </summary>
    [Fact]
    public async Task Server_ADestinationWithASilentAddress_IsReachedThroughTheOther()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var destination = new EchoDestination();
        using var silent = new StalledListener(IPAddress.Parse("127.0.0.2"), destination.EndPoint.Port);
        var resolver = new FixedResolver([IPAddress.Parse("127.0.0.2"), IPAddress.Loopback]);
        var options = RelayChain.Options("aes-256-gcm", "eyeballs", new IPEndPoint(IPAddress.Loopback, 0)) with { ConnectTimeout = TimeSpan.FromMinutes(2) };
        await using var server = new ServerTcpRelay(options, resolver, ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        await using var local = new LocalTcpRelay(options with { Server = server.LocalEndPoint }, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();

        var (socket, reply) = await Socks5TestClient.ConnectAsync(local.LocalEndPoint, "dual.test", destination.EndPoint.Port, cancel.Token);
        using (socket)
        {
            Assert.Equal(0, reply);
            await Transfer.EchoRoundTripAsync(socket, 10_000, cancel.Token);
        }

        Assert.Equal(1, resolver.Lookups);
    }

    private static ValueTask<Socket> Open(IPEndPoint target, CancellationToken token) => Open(target, token, null);

    /// <summary>As the connect stage opens a socket: non-blocking connect, the outcome on the readiness loop; closed when it fails.</summary>
    private static async ValueTask<Socket> Open(IPEndPoint target, CancellationToken token, List<Socket>? record)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        lock (record ?? [])
        {
            record?.Add(socket);
        }

        try
        {
            await SocketIo.ConnectAsync(socket, target, token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        return listener;
    }

    private static IPEndPoint EndPointOf(Socket listener) => (IPEndPoint)listener.LocalEndPoint!;

    private static IPEndPoint ClosedPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return (IPEndPoint)probe.LocalEndPoint!; // closed again at once: nothing listens there
    }

    private sealed class FixedResolver(IPAddress[] addresses) : IDnsResolver
    {
        private int _lookups;

        public int Lookups => Volatile.Read(ref _lookups);

        public ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _lookups);
            return ValueTask.FromResult(addresses);
        }
    }
}
