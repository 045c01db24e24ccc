using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Socks5Trim;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Tests.Stages.Socks5Trim;

/// <summary>
/// A UDP ASSOCIATE's control connection carries no data, so no idle timeout applies to it: a client whose host vanished
/// (no FIN, no reset) kept its association for ever. TCP keepalive on the control connection finds such a peer, and
/// the receive's error ends the association as a close does.
/// </summary>
public sealed class UdpAssociateStageTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task TheControlConnection_HasKeepAlive_AndItsErrorEndsTheAssociation()
    {
        using var cancel = new CancellationTokenSource(s_wait);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!, cancel.Token);
        var accepted = await listener.AcceptAsync(cancel.Token);
        var associations = new UdpAssociations(static _ => { });
        var stage = UdpAssociateStage.Create(associations, new IPEndPoint(IPAddress.Loopback, 1080));

        Assert.True(stage.Post(new TcpSession(accepted, span: null) { UdpAssociate = true }));

        // The reply (VER REP RSV ATYP=1 BND.ADDR BND.PORT): the options are set before it is sent.
        var reply = new byte[10];
        for (var read = 0; read < reply.Length;)
        {
            var got = await client.ReceiveAsync(reply.AsMemory(read), SocketFlags.None, cancel.Token);
            Assert.True(got > 0, "the control connection closed before the reply");
            read += got;
        }

        Assert.Equal(new byte[] { 5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38 }, reply);
        Assert.True(associations.Contains(IPAddress.Loopback));
        Assert.NotEqual(0, (int)accepted.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!);
        Assert.Equal((int)UdpAssociateStage.KeepAliveIdle.TotalSeconds, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime)!);
        Assert.Equal((int)UdpAssociateStage.KeepAliveInterval.TotalSeconds, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval)!);
        Assert.Equal(UdpAssociateStage.KeepAliveProbes, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount)!);
        Assert.True(UdpAssociateStage.KeepAliveIdle + (UdpAssociateStage.KeepAliveInterval * UdpAssociateStage.KeepAliveProbes) <= TimeSpan.FromMinutes(2));

        // A keepalive that gives up fails the receive (ETIMEDOUT); a reset fails it the same way (ECONNRESET), and
        // that ends the association, as a close does.
        client.LingerState = new LingerOption(true, 0);
        client.Close();
        while (associations.Contains(IPAddress.Loopback))
        {
            await Task.Delay(20, cancel.Token); // the token's 30 s bound the wait: an association that stays fails here
        }
    }
}
