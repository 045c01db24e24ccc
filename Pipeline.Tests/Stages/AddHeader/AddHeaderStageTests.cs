using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.AddHeader;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.AddHeader;

/// <summary>
/// The wait for a client's first bytes, on a clock that moves only when told. A tunnel's client may speak from its
/// accept on, so its wait runs from the accept, alongside the connect to the server; it used to start once the server
/// was connected, so a client whose destination speaks first (SMTP, FTP, SSH: the client sends nothing, it waits for
/// the banner) waited for the connect and then 20 ms more, where ss-tunnel sends the header at once. A SOCKS5 client
/// can speak only after its reply, so the local's wait still runs from that.
/// </summary>
public sealed class AddHeaderStageTests
{
    private static readonly TimeSpan s_deadline = TimeSpan.FromSeconds(30);

    // ATYP 1, 192.0.2.7, port 25.
    private static readonly ShadowsocksAddress s_destination = ShadowsocksAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("192.0.2.7"), 25));
    private static readonly byte[] s_header = [1, 192, 0, 2, 7, 0, 25];

    [Fact]
    public async Task Tunnel_AConnectThatOutlastedTheWait_ASilentClientsHeaderGoesAlone_WithNoMoreWait()
    {
        using var cancel = new CancellationTokenSource(s_deadline);
        var clock = new ManualTimeProvider();
        using var pair = await Pair.OpenAsync(cancel.Token);
        var stage = AddHeaderStage.Create(new StageOptions(4, 16), replyToSocks5: false, clock);
        var session = pair.Session(clock);
        clock.Advance(TimeSpan.FromMilliseconds(50)); // the connect to the server took 50 ms

        Assert.True(stage.Post(session));

        // The clock does not move again: a wait begun now would never end, and the deadline fails the test.
        using var passed = await stage.ReceiveAsync(cancel.Token);
        Assert.True(passed.IsAlive, passed.FailureReason);
        Assert.Equal(s_header, passed.InitialPayload!.Value.Span.ToArray());
    }

    [Fact]
    public async Task Tunnel_AConnectThatOutlastedTheWait_WhatTheClientSentMeanwhileRidesWithTheHeader()
    {
        using var cancel = new CancellationTokenSource(s_deadline);
        var clock = new ManualTimeProvider();
        using var pair = await Pair.OpenAsync(cancel.Token);
        var stage = AddHeaderStage.Create(new StageOptions(4, 16), replyToSocks5: false, clock);
        var session = pair.Session(clock);
        await pair.Client.SendAsync("EHLO"u8.ToArray(), SocketFlags.None, cancel.Token);
        while (pair.Accepted.Available < 4)
        {
            await Task.Delay(10, cancel.Token); // loopback delivers at once; the token's 30 s bound the loop
        }

        clock.Advance(TimeSpan.FromMilliseconds(50));
        Assert.True(stage.Post(session));

        using var passed = await stage.ReceiveAsync(cancel.Token);
        Assert.True(passed.IsAlive, passed.FailureReason);
        Assert.Equal([.. s_header, .. "EHLO"u8.ToArray()], passed.InitialPayload!.Value.Span.ToArray());
    }

    [Fact]
    public async Task Tunnel_TheWaitEnds20msAfterTheAccept_NotAfterTheConnect()
    {
        using var cancel = new CancellationTokenSource(s_deadline);
        var clock = new ManualTimeProvider();
        using var pair = await Pair.OpenAsync(cancel.Token);
        var stage = AddHeaderStage.Create(new StageOptions(4, 16), replyToSocks5: false, clock);
        var session = pair.Session(clock);
        var accepted = clock.GetUtcNow();
        clock.Advance(TimeSpan.FromMilliseconds(5)); // a connect of 5 ms

        Assert.True(stage.Post(session));
        var due = await DueTimeAsync(clock, cancel.Token);
        Assert.Equal(accepted + AddHeaderStage.FirstDataWait, due);

        clock.Advance(AddHeaderStage.FirstDataWait - TimeSpan.FromMilliseconds(5));
        using var passed = await stage.ReceiveAsync(cancel.Token);
        Assert.True(passed.IsAlive, passed.FailureReason);
        Assert.Equal(s_header, passed.InitialPayload!.Value.Span.ToArray());
    }

    [Fact]
    public async Task Local_TheWaitRunsFromTheSocks5Reply_HoweverLongTheConnectTook()
    {
        using var cancel = new CancellationTokenSource(s_deadline);
        var clock = new ManualTimeProvider();
        using var pair = await Pair.OpenAsync(cancel.Token);
        var stage = AddHeaderStage.Create(new StageOptions(4, 16), replyToSocks5: true, clock);
        var session = pair.Session(clock);
        clock.Advance(TimeSpan.FromMilliseconds(50));
        var replied = clock.GetUtcNow();

        Assert.True(stage.Post(session));
        var due = await DueTimeAsync(clock, cancel.Token);
        Assert.Equal(replied + AddHeaderStage.FirstDataWait, due);
        var reply = new byte[10];
        for (var read = 0; read < reply.Length;)
        {
            var got = await pair.Client.ReceiveAsync(reply.AsMemory(read), SocketFlags.None, cancel.Token);
            Assert.True(got > 0, "the client was closed before its SOCKS5 reply");
            read += got;
        }

        Assert.Equal(new byte[] { 5, 0, 0, 1 }, reply[..4]);

        clock.Advance(AddHeaderStage.FirstDataWait);
        using var passed = await stage.ReceiveAsync(cancel.Token);
        Assert.True(passed.IsAlive, passed.FailureReason);
        Assert.Equal(s_header, passed.InitialPayload!.Value.Span.ToArray());
    }

    /// <summary>When the stage's wait ends, once it has begun (its timer armed on the manual clock).</summary>
    private static async Task<DateTimeOffset> DueTimeAsync(ManualTimeProvider clock, CancellationToken cancellationToken)
    {
        while (clock.Pending == 0)
        {
            await Task.Delay(10, cancellationToken); // the token's 30 s bound the loop: a wait never begun fails here
        }

        return Assert.Single(clock.DueTimes);
    }

    /// <summary>A client and its accepted socket on loopback.</summary>
    private sealed class Pair : IDisposable
    {
        private Pair(Socket client, Socket accepted)
        {
            Client = client;
            Accepted = accepted;
        }

        public Socket Client { get; }

        public Socket Accepted { get; }

        public static async Task<Pair> OpenAsync(CancellationToken cancellationToken)
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(listener.LocalEndPoint!, cancellationToken);
            return new Pair(client, await listener.AcceptAsync(cancellationToken));
        }

        /// <summary>The accepted socket's session, accepted now on <paramref name="clock"/>, going to the test's destination.</summary>
        public TcpSession Session(TimeProvider clock) =>
            new(Accepted, span: null) { AcceptedAt = clock.GetTimestamp(), Destination = s_destination };

        public void Dispose()
        {
            Client.Dispose();
            Accepted.Dispose();
        }
    }
}
