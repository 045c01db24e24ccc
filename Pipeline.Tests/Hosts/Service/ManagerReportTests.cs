using System.Net;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Hosts.Service;

namespace Shadowsocks.Pipeline.Tests.Hosts.Service;

/// <summary><c>--manager-address</c>: the stat datagram ss-server sends to ss-manager, over UDP or a UNIX socket.</summary>
public sealed class ManagerReportTests
{
    [Fact]
    public void TheMessage_IsSsServersStatLine_NulTerminated() =>
        Assert.Equal("stat: {\"8001\":11370}\0", Encoding.ASCII.GetString(ManagerReport.Message(8001, 11370)));

    [Fact]
    public void ToAUnixSocket_FromASocketOfItsOwn_ThatItRemovesAfter()
    {
        var directory = Directory.CreateTempSubdirectory("ss-manager-");
        try
        {
            var path = Path.Combine(directory.FullName, "manager.sock");
            using var manager = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            manager.Bind(new UnixDomainSocketEndPoint(path));
            using var report = new ManagerReport(path, 18_999, TimeProvider.System);

            TrafficTotal.Add(1234);
            report.Send();
            var buffer = new byte[256];
            manager.ReceiveTimeout = 5000;
            var text = Encoding.ASCII.GetString(buffer, 0, manager.Receive(buffer));
            Assert.Matches("^stat: \\{\"18999\":[0-9]+\\}\0$", text);
            Assert.True(long.Parse(text[(text.IndexOf(':', 6) + 1)..text.IndexOf('}')], System.Globalization.CultureInfo.InvariantCulture) >= 1234);
            Assert.False(File.Exists("/tmp/shadowsocks.18999"), "the report's own socket file was left behind");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void ToAHostAndPort_OverUdp_AndNobodyListening_CostsNothing()
    {
        using var manager = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        manager.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        manager.ReceiveTimeout = 5000;
        using var report = new ManagerReport($"127.0.0.1:{((IPEndPoint)manager.LocalEndPoint!).Port}", 8388, TimeProvider.System);
        report.Send();
        var buffer = new byte[256];
        Assert.StartsWith("stat: {\"8388\":", Encoding.ASCII.GetString(buffer, 0, manager.Receive(buffer)));

        using var nobody = new ManagerReport(Path.Combine(Path.GetTempPath(), $"no-manager-{Guid.NewGuid():N}.sock"), 8389, TimeProvider.System);
        nobody.Send(); // no exception: the manager is simply not there
    }
}
