using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// A UDP relay's listening socket and the event loop its datagrams are handled on (the relay's blocks take
/// <see cref="Scheduler"/>, its NAT table <see cref="Loop"/>). Disposing stops the receiving, closes the socket and
/// stops the loop; the relay disposes its NAT table first.
/// </summary>
internal sealed class UdpListenLoop : IDisposable
{
    private IDisposable? _receiving;

    /// <param name="name">The loop thread's name (it shows in profiles).</param>
    /// <param name="reusePort">Bind with <c>SO_REUSEPORT</c> (the relay's <c>reuse_port</c>).</param>
    /// <param name="ipv6Only">On <c>::</c>, IPv6 only (the relay's <see cref="Core.Configuration.RelayOptions.ListenIpv6Only"/>).</param>
    public UdpListenLoop(IPEndPoint listen, string name, bool reusePort = false, bool ipv6Only = false)
    {
        Socket = UdpSockets.Listen(listen, reusePort, ipv6Only);
        try
        {
            Loop = new EventLoop(name);
        }
        catch
        {
            Socket.Dispose();
            throw;
        }
    }

    public Socket Socket { get; }

    public EventLoop Loop { get; }

    public TaskScheduler Scheduler => Loop.Scheduler;

    /// <summary>The bound endpoint (useful with port 0).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)Socket.LocalEndPoint!;

    /// <summary>Starts receiving clients' datagrams into <paramref name="firstStage"/>; <paramref name="admit"/> as <see cref="UdpReceiver.Start"/>.</summary>
    public void Receive(ITargetBlock<Datagram> firstStage, Func<Datagram, bool>? admit = null) =>
        _receiving = UdpReceiver.Start(Loop, Socket, firstStage, admit, Direction.Upstream);

    public void Dispose()
    {
        _receiving?.Dispose();
        Socket.Dispose();
        Loop.Dispose();
    }
}
