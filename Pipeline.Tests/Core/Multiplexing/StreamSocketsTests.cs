using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class StreamSocketsTests
{
    [Theory]
    [InlineData(false, 6)] // IPPROTO_TCP
    [InlineData(true, 262)] // IPPROTO_MPTCP
    public void OpensTheKernelsProtocol(bool multipath, int protocol)
    {
        if (multipath)
        {
            MultipathTests.RequireMultipath();
        }

        using var socket = StreamSockets.Open(AddressFamily.InterNetwork, multipath);
        var value = new byte[4];
        socket.GetRawSocketOption(1, 38, value); // SOL_SOCKET, SO_PROTOCOL
        Assert.Equal(protocol, BitConverter.ToInt32(value));
    }

    [Fact]
    public async Task AMultipathSocket_ConnectsAndCarriesBytes_LikeAnyOther()
    {
        MultipathTests.RequireMultipath();
        using var listener = StreamSockets.Open(AddressFamily.InterNetworkV6, multipath: true);
        listener.DualMode = true;
        listener.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
        listener.Listen();
        using var client = StreamSockets.Open(AddressFamily.InterNetwork, multipath: true);
        await SocketIo.ConnectAsync(client, new IPEndPoint(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndPoint!).Port), CancellationToken.None);
        using var accepted = await listener.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await SocketSend.SendAllAsync(client, "multipath"u8.ToArray(), CancellationToken.None);
        var buffer = new byte[16];
        var received = await SocketIo.ReceiveAsync(accepted, buffer, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("multipath", System.Text.Encoding.ASCII.GetString(buffer, 0, received));
    }
}
