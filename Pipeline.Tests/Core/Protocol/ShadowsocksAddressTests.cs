using System.Net;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>How a destination is written in messages ("cannot connect to HOST:PORT").</summary>
public sealed class ShadowsocksAddressTests
{
    [Theory]
    [InlineData("example.com", "example.com:7001")]
    [InlineData("::1", "[::1]:7001")]       // a name (ATYP 3) holding ':': it read ::1:7001
    [InlineData("::", "[::]:7001")]         // it read :::7001
    [InlineData("[::1]", "[::1]:7001")]     // already in brackets: not again
    [InlineData("[a]:b", "[[a]:b]:7001")]   // brackets, but not around the whole
    public void ToString_AName_IsWrittenUnambiguously(string host, string expected) =>
        Assert.Equal(expected, ShadowsocksAddress.FromHost(host, 7001).ToString());

    [Fact]
    public void ToString_AnIPv6Address_IsInBrackets() =>
        Assert.Equal("[2001:db8::1]:443", ShadowsocksAddress.FromIp(IPAddress.Parse("2001:db8::1"), 443).ToString());
}
