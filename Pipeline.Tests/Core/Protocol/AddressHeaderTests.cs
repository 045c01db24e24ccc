using System.Net;
using System.Text;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

public sealed class AddressHeaderTests
{
    public static TheoryData<string> ValidHeaders() => new()
    {
        "01 c0a80001 01bb",
        "03 0b 6578616d706c652e636f6d 0050",
        "04 20010db8000000000000000000000001 ffff",
    };

    [Fact]
    public void TryRead_IPv4_ReadsAddressAndBigEndianPort()
    {
        var status = AddressHeader.TryRead(Hex("01 c0a80001 01bb 99"), out var address, out var consumed);

        Assert.Equal(AddressParseStatus.Ok, status);
        Assert.Equal(7, consumed);
        Assert.Equal(IPAddress.Parse("192.168.0.1"), address.Ip);
        Assert.Null(address.Host);
        Assert.Equal(443, address.Port);
    }

    [Fact]
    public void TryRead_Domain_ReadsName()
    {
        var status = AddressHeader.TryRead(Hex("03 0b 6578616d706c652e636f6d 0050"), out var address, out var consumed);

        Assert.Equal(AddressParseStatus.Ok, status);
        Assert.Equal(15, consumed);
        Assert.True(address.IsDomain);
        Assert.Equal("example.com", address.Host);
        Assert.Equal(80, address.Port);
        Assert.Equal("example.com:80", address.ToString());
    }

    [Fact]
    public void TryRead_IPv6_ReadsAndFormatsCompressed()
    {
        var status = AddressHeader.TryRead(Hex("04 20010db8000000000000000000000001 ffff"), out var address, out var consumed);

        Assert.Equal(AddressParseStatus.Ok, status);
        Assert.Equal(19, consumed);
        Assert.Equal("2001:db8::1", address.Ip!.ToString());
        Assert.Equal(65535, address.Port);
        Assert.Equal("[2001:db8::1]:65535", address.ToString());
    }

    [Theory]
    [MemberData(nameof(ValidHeaders))]
    public void TryRead_EveryPrefix_IsIncomplete(string hex)
    {
        var bytes = Hex(hex);
        for (var length = 0; length < bytes.Length; length++)
        {
            var status = AddressHeader.TryRead(bytes.AsSpan(0, length), out var address, out var consumed);
            Assert.Equal(AddressParseStatus.Incomplete, status);
            Assert.Equal(0, consumed);
            Assert.Equal(default, address);
        }

        Assert.Equal(AddressParseStatus.Ok, AddressHeader.TryRead(bytes, out _, out var all));
        Assert.Equal(bytes.Length, all);
    }

    [Theory]
    [MemberData(nameof(ValidHeaders))]
    public void Write_ReadBack_IsByteExact(string hex)
    {
        var bytes = Hex(hex);
        Assert.Equal(AddressParseStatus.Ok, AddressHeader.TryRead(bytes, out var address, out _));

        var written = new byte[AddressHeader.MaxSize];
        var length = AddressHeader.Write(address, written);

        Assert.Equal(bytes.Length, AddressHeader.GetSize(address));
        Assert.Equal(bytes, written[..length]);
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x02)]
    [InlineData(0x05)]
    [InlineData(0x11)]
    [InlineData(0x81)]
    [InlineData(0xff)]
    public void TryRead_UnknownAtyp_IsUnsupportedWithoutMasking(byte atyp)
    {
        var bytes = new byte[32];
        bytes[0] = atyp;
        bytes[1] = 4;

        Assert.Equal(AddressParseStatus.UnsupportedAddressType, AddressHeader.TryRead(bytes, out _, out var consumed));
        Assert.Equal(0, consumed);
        Assert.Equal(AddressParseStatus.UnsupportedAddressType, AddressHeader.TryRead(bytes.AsSpan(0, 1), out _, out _));
    }

    [Fact]
    public void TryRead_ZeroLengthDomain_IsMalformed()
    {
        Assert.Equal(AddressParseStatus.Malformed, AddressHeader.TryRead(Hex("03 00 0050"), out _, out var consumed));
        Assert.Equal(0, consumed);
        Assert.Equal(AddressParseStatus.Malformed, AddressHeader.TryRead(Hex("03 00"), out _, out _));
    }

    [Fact]
    public void WriteAndRead_MaxLengthDomain_RoundTrips()
    {
        var host = string.Join('.', Enumerable.Repeat(new string('a', 63), 4))[..255];
        var address = ShadowsocksAddress.FromHost(host, 8388);
        var buffer = new byte[AddressHeader.MaxSize];

        var length = AddressHeader.Write(address, buffer);

        Assert.Equal(AddressHeader.MaxSize, length);
        Assert.Equal(255, buffer[1]);
        Assert.Equal(AddressParseStatus.Ok, AddressHeader.TryRead(buffer, out var read, out var consumed));
        Assert.Equal(AddressHeader.MaxSize, consumed);
        Assert.Equal(address, read);
    }

    [Fact]
    public void Write_DomainOver255Bytes_Throws()
    {
        var address = ShadowsocksAddress.FromHost(new string('a', 256), 80);

        Assert.Throws<ArgumentException>(() => AddressHeader.GetSize(address));
        Assert.Throws<ArgumentException>(() => AddressHeader.Write(address, new byte[300]));
    }

    [Fact]
    public void Write_IPv4AndIPv6_UseTheirAtyp()
    {
        var buffer = new byte[AddressHeader.MaxSize];

        Assert.Equal(7, AddressHeader.Write(ShadowsocksAddress.FromIp(IPAddress.Parse("10.0.0.2"), 1080), buffer));
        Assert.Equal(Hex("01 0a000002 0438"), buffer[..7]);

        Assert.Equal(19, AddressHeader.Write(ShadowsocksAddress.FromIp(IPAddress.Parse("::1"), 53), buffer));
        Assert.Equal(Hex("04 00000000000000000000000000000001 0035"), buffer[..19]);
    }

    [Fact]
    public void Write_DestinationTooShort_Throws() =>
        Assert.Throws<ArgumentException>(() => AddressHeader.Write(ShadowsocksAddress.FromIp(IPAddress.Loopback, 1), new byte[6]));

    [Fact]
    public void TryRead_RandomBytes_NeverThrows()
    {
        var random = new Random(1928);
        var buffer = new byte[40];
        for (var i = 0; i < 20_000; i++)
        {
            random.NextBytes(buffer);
            buffer[0] = (byte)random.Next(0, 6);
            var length = random.Next(0, buffer.Length + 1);
            var status = AddressHeader.TryRead(buffer.AsSpan(0, length), out _, out var consumed);
            Assert.True(status == AddressParseStatus.Ok ? consumed > 0 && consumed <= length : consumed == 0);
        }
    }

    [Fact]
    public void TryRead_NonAsciiOrControlBytesInDomain_IsMalformed()
    {
        // Names travel as ASCII (IDNs as punycode): binary bytes are garbage, e.g. a stream-cipher probe decrypted.
        Assert.Equal(AddressParseStatus.Malformed, AddressHeader.TryRead(Hex("03 02 ff fe 0050"), out _, out _));
        Assert.Equal(AddressParseStatus.Malformed, AddressHeader.TryRead(Hex("03 03 61 00 62 0050"), out _, out _));
        Assert.Equal(AddressParseStatus.Malformed, AddressHeader.TryRead(Hex("03 03 61 20 62 0050"), out _, out _));
        Assert.Equal(AddressParseStatus.Ok, AddressHeader.TryRead(Hex("03 0b 78 6e 2d 2d 6d 6e 63 2e 74 65 73 0050"), out var address, out _));
        Assert.Equal("xn--mnc.tes", address.Host);
    }

    internal static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal));
}
