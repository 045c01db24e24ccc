using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>The last stage of each UDP direction: the datagram leaves and its buffer goes back to the pool.</summary>
internal static class UdpSendStages
{
    /// <summary>Out through the client's NAT entry: to the server (local, tunnel: connected socket) or to <see cref="Datagram.Resolved"/> (server).</summary>
    public static ActionBlock<Datagram> ThroughNat(StageOptions options, UdpNatTable nat, IPEndPoint? server) =>
        new(async datagram =>
        {
            try
            {
                var entry = nat.GetOrAdd(datagram.Client);
                entry.CountOut();
                var target = server ?? datagram.Resolved!;
                if (entry.Outbound.AddressFamily == AddressFamily.InterNetworkV6 && target.AddressFamily == AddressFamily.InterNetwork)
                {
                    target = new IPEndPoint(target.Address.MapToIPv6(), target.Port);
                }

                await entry.Outbound.SendToAsync(datagram.Buffer.AsMemory(datagram.Offset, datagram.Length), SocketFlags.None, target).ConfigureAwait(false);
                datagram.Return();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                UdpCounters.Drop(datagram, "send failed");
            }
        }, BlockOptions.Shared(options));

    /// <summary>Back to the client, from the relay's listening socket.</summary>
    public static ActionBlock<Datagram> ToClient(StageOptions options, Socket listener) =>
        new(async datagram =>
        {
            try
            {
                EndPoint client = datagram.Client;
                if (listener.AddressFamily == AddressFamily.InterNetworkV6 && datagram.Client.AddressFamily == AddressFamily.InterNetwork)
                {
                    client = new IPEndPoint(datagram.Client.Address.MapToIPv6(), datagram.Client.Port);
                }

                await listener.SendToAsync(datagram.Buffer.AsMemory(datagram.Offset, datagram.Length), SocketFlags.None, client).ConfigureAwait(false);
                datagram.Return();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                UdpCounters.Drop(datagram, "send failed");
            }
        }, BlockOptions.Shared(options));
}
