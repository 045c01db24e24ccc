using System.Net;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class NativeSocketAddressTests
{
    [Theory]
    [InlineData("127.0.0.1:53", "127.0.0.1:53")]
    [InlineData("10.1.2.3:65535", "10.1.2.3:65535")]
    [InlineData("[::1]:8388", "[::1]:8388")]
    [InlineData("[2001:db8::7]:1", "[2001:db8::7]:1")]
    [InlineData("[::ffff:192.0.2.9]:443", "192.0.2.9:443")]
    public void ReadsWhatTheKernelWrites(string endPoint, string expected)
    {
        // .NET's SocketAddress holds the platform's sockaddr bytes: the same layout recvfrom fills in.
        var native = IPEndPoint.Parse(endPoint).Serialize();
        var parsed = NativeSocketAddress.ToEndPoint(native.Buffer.Span[..native.Size]);
        Assert.Equal(IPEndPoint.Parse(expected), parsed);
    }

    [Fact]
    public void KeepsTheScopeOfALinkLocalAddress()
    {
        var endPoint = new IPEndPoint(IPAddress.Parse("fe80::1%3"), 9);
        var native = endPoint.Serialize();
        Assert.Equal(3, NativeSocketAddress.ToEndPoint(native.Buffer.Span[..native.Size])!.Address.ScopeId);
    }

    [Fact]
    public void ShortOrForeignAddresses_AreNull()
    {
        Assert.Null(NativeSocketAddress.ToEndPoint([2, 0, 0, 53]));
        Assert.Null(NativeSocketAddress.ToEndPoint([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])); // AF_UNIX
        var v6 = IPEndPoint.Parse("[::1]:1").Serialize();
        Assert.Null(NativeSocketAddress.ToEndPoint(v6.Buffer.Span[..20]));
    }
}
