using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class DualStackTests
{
    [Theory]
    [InlineData("[::ffff:127.0.0.1]:53", "127.0.0.1:53")]
    [InlineData("127.0.0.1:53", "127.0.0.1:53")]
    [InlineData("[::1]:53", "[::1]:53")]
    public void Unmapped_GivesIpv4MappedAddressesTheirPlainForm(string endPoint, string expected) =>
        Assert.Equal(IPEndPoint.Parse(expected), DualStack.Unmapped(IPEndPoint.Parse(endPoint)));

    [Fact]
    public void For_MapsIpv4OnlyForAnIpv6Socket()
    {
        using var v6 = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        using var v4 = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var plain = IPEndPoint.Parse("192.0.2.1:9");
        Assert.Equal(IPEndPoint.Parse("[::ffff:192.0.2.1]:9"), DualStack.For(v6, plain));
        Assert.Equal(plain, DualStack.For(v4, plain));
        Assert.Equal(IPEndPoint.Parse("[2001:db8::1]:9"), DualStack.For(v6, IPEndPoint.Parse("[2001:db8::1]:9")));
    }
}
