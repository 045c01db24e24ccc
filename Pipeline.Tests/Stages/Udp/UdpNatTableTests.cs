using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Microsoft.Reactive.Testing;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Tests.Stages.Udp;

/// <summary>
/// The local's NAT table asks whether a client still holds its association as it would make the client's entry: a
/// datagram let in while the association was live can reach the table after the control connection closed, and must
/// not open an entry (a socket to the server, kept for the UDP timeout) for a client that has none. A 2022 server's
/// table goes by client session, and names the session and its user on the association's span.
/// </summary>
public sealed class UdpNatTableTests
{
    private static readonly IPEndPoint s_client = new(IPAddress.Loopback, 40_000);

    [Fact]
    public void AClientNoLongerAdmitted_GetsNoEntry_AndNoSocketIsOpened()
    {
        using var loop = new EventLoop("test loop");
        var admitted = true;
        var opened = new List<Socket>();
        using var nat = Table(loop, opened, _ => admitted);

        Assert.NotNull(nat.GetOrAdd(s_client));
        Assert.Equal(1, nat.RemoveWhere(client => client.Address.Equals(s_client.Address))); // the control connection closed
        admitted = false;

        Assert.Null(nat.GetOrAdd(s_client)); // a datagram that was on its way
        Assert.Equal(0, nat.Count);
        Assert.Single(opened);
        Assert.True(opened[0].SafeHandle.IsClosed);
    }

    [Fact]
    public void AnEntryAlreadyMade_IsFoundWithoutAskingAgain()
    {
        using var loop = new EventLoop("test loop");
        var asked = 0;
        var opened = new List<Socket>();
        using var nat = Table(loop, opened, _ =>
        {
            asked++;
            return true;
        });

        var first = nat.GetOrAdd(s_client);
        Assert.Same(first, nat.GetOrAdd(s_client));
        Assert.Equal(1, asked);
        Assert.Single(opened);
    }

    [Fact]
    public void A2022SessionsAssociation_NamesTheSessionAndItsUser_OnItsSpan()
    {
        using var loop = new EventLoop("test loop");
        var opened = new List<Socket>();
        var started = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == PipelineTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = a =>
            {
                lock (started)
                {
                    started.Add(a);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var user = new ServerUser("alice", new byte[16], hash: 0);
        using var session = new Udp2022ServerSession(0x0123456789abcdef, null, 42, user) { LastHeardFrom = s_client };
        using var nat = new UdpNatTable<Udp2022ServerSession>(16, TimeSpan.FromMinutes(5), new TestScheduler(), static s => s.LastHeardFrom!, _ =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            opened.Add(socket);
            return socket;
        }, new BufferBlock<Datagram>(), loop, "server");

        Assert.NotNull(nat.GetOrAdd(session));

        Activity association;
        lock (started)
        {
            association = Assert.Single(started, a => a.GetTagItem(TagNames.SessionId) as string == "0123456789abcdef");
        }

        Assert.Equal("udp.association", association.OperationName);
        Assert.Equal("alice", association.GetTagItem(TagNames.UserName));
        Assert.Equal(s_client.Port, association.GetTagItem(TagNames.NetworkPeerPort));
        Assert.True(nat.Remove(session)); // its session ended: the entry and its socket go
        Assert.True(opened[0].SafeHandle.IsClosed);
    }

    [Fact]
    public void AnEntryThatExpires_LetsGoOfItsClientPort_InTheAssociations()
    {
        using var loop = new EventLoop("test loop");
        var opened = new List<Socket>();
        var clock = new TestScheduler();
        var associations = new UdpAssociations(_ => { });
        using var association = associations.Register(s_client.Address, 0);
        using var nat = Table(loop, opened, associations.Attach, clock, associations.Detach);

        Assert.NotNull(nat.GetOrAdd(s_client));
        Assert.Equal(1, associations.AttachedCount);

        clock.AdvanceBy(TimeSpan.FromMinutes(6).Ticks); // past udp_timeout: the entry expires, its socket closes
        Assert.Equal(0, nat.Count);
        Assert.True(opened[0].SafeHandle.IsClosed);
        Assert.Equal(0, associations.AttachedCount);
    }

    private static UdpNatTable<IPEndPoint> Table(
        EventLoop loop, List<Socket> opened, Func<IPEndPoint, bool> admits, TestScheduler? clock = null, Action<IPEndPoint>? removed = null) =>
        new(16, TimeSpan.FromMinutes(5), clock ?? new TestScheduler(), static client => client, _ =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            opened.Add(socket);
            return socket;
        }, new BufferBlock<Datagram>(), loop, "test", admits, removed);
}
