using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Tests.Stages.Connections;

/// <summary>Outbound sockets tied to an interface (<c>-i</c>) and given a source address (server's <c>-b</c>).</summary>
public sealed class OutboundSocketTests
{
    [Fact]
    public void BindToInterface_TiesTheSocketToIt()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.Null(OutboundSocket.BoundInterface(socket));
        OutboundSocket.BindToInterface(socket, "lo");
        Assert.Equal("lo", OutboundSocket.BoundInterface(socket));
        OutboundSocket.BindToInterface(socket, null); // nothing given: left as it is
        Assert.Equal("lo", OutboundSocket.BoundInterface(socket));
    }

    [Fact]
    public async Task BindSource_TheDestinationSeesThatAddress_WithThePortChosenAtConnect()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var source = IPAddress.Parse("127.0.0.2");

        OutboundSocket.BindSource(socket, source, portAtConnect: true);
        Assert.Equal(0, ((IPEndPoint)socket.LocalEndPoint!).Port); // IP_BIND_ADDRESS_NO_PORT: no port taken yet
        await socket.ConnectAsync(listener.LocalEndPoint!);
        using var accepted = await listener.AcceptAsync();
        Assert.Equal(source, ((IPEndPoint)accepted.RemoteEndPoint!).Address);
    }

    [Fact]
    public void BindSource_OfTheOtherFamily_LeavesTheSocketUnbound()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        OutboundSocket.BindSource(socket, IPAddress.IPv6Loopback, portAtConnect: true);
        Assert.Null(socket.LocalEndPoint);
    }
}
