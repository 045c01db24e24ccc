using System.Net;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

public sealed class Socks5CodecTests
{
    public static TheoryData<string> ValidRequests() => new()
    {
        "05 01 00 01 7f000001 0050",
        "05 01 00 03 0b 6578616d706c652e636f6d 01bb",
        "05 03 00 04 fe800000000000000000000000000001 1f90",
    };

    [Fact]
    public void TryReadGreeting_NoAuthOffered_IsOk()
    {
        var status = Socks5Codec.TryReadGreeting(Hex("05 02 02 00 ee"), out var noAuth, out var consumed);

        Assert.Equal(AddressParseStatus.Ok, status);
        Assert.True(noAuth);
        Assert.Equal(4, consumed);
    }

    [Fact]
    public void TryReadGreeting_OnlyOtherMethods_IsOkWithoutNoAuth()
    {
        var status = Socks5Codec.TryReadGreeting(Hex("05 02 01 02"), out var noAuth, out var consumed);

        Assert.Equal(AddressParseStatus.Ok, status);
        Assert.False(noAuth);
        Assert.Equal(4, consumed);
    }

    [Fact]
    public void TryReadGreeting_EveryPrefix_IsIncomplete()
    {
        var bytes = Hex("05 03 01 02 00");
        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.Equal(AddressParseStatus.Incomplete, Socks5Codec.TryReadGreeting(bytes.AsSpan(0, length), out var noAuth, out var consumed));
            Assert.False(noAuth);
            Assert.Equal(0, consumed);
        }
    }

    [Theory]
    [InlineData("04 01 00")]
    [InlineData("04")]
    [InlineData("00 01 00")]
    [InlineData("47 45 54 20")]
    public void TryReadGreeting_BadVersion_IsMalformed(string hex) =>
        Assert.Equal(AddressParseStatus.Malformed, Socks5Codec.TryReadGreeting(Hex(hex), out _, out _));

    [Fact]
    public void TryReadGreeting_ZeroMethods_IsMalformed() =>
        Assert.Equal(AddressParseStatus.Malformed, Socks5Codec.TryReadGreeting(Hex("05 00"), out _, out _));

    [Theory]
    [InlineData("05 02 00 02", true, true)]
    [InlineData("05 01 02", false, true)]
    [InlineData("05 02 00 01", true, false)]
    public void TryReadGreeting_TellsWhetherUsernamePasswordIsOffered(string hex, bool noAuth, bool usernamePassword)
    {
        Assert.Equal(AddressParseStatus.Ok, Socks5Codec.TryReadGreeting(Hex(hex), out var noAuthOffered, out var usernamePasswordOffered, out _));
        Assert.Equal(noAuth, noAuthOffered);
        Assert.Equal(usernamePassword, usernamePasswordOffered);
    }

    [Fact]
    public void TryReadUsernamePassword_AWholeLogin_GivesTheNameAndPassword()
    {
        var bytes = Hex("01 05 616c696365 03 707764 ee"); // alice, pwd, then a byte of what follows
        var status = Socks5Codec.TryReadUsernamePassword(bytes, out var name, out var password, out var consumed);

        Assert.Equal(AddressParseStatus.Ok, status);
        Assert.Equal("alice"u8.ToArray(), bytes[name]);
        Assert.Equal("pwd"u8.ToArray(), bytes[password]);
        Assert.Equal(11, consumed);
    }

    [Fact]
    public void TryReadUsernamePassword_EveryPrefix_IsIncomplete()
    {
        var bytes = Hex("01 05 616c696365 03 707764");
        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.Equal(AddressParseStatus.Incomplete, Socks5Codec.TryReadUsernamePassword(bytes.AsSpan(0, length), out _, out _, out var consumed));
            Assert.Equal(0, consumed);
        }
    }

    [Theory]
    [InlineData("05 05 616c696365 03 707764")] // VER 5: a second greeting, not a login
    [InlineData("00")]
    [InlineData("01 00 03 707764")] // ULEN 0
    [InlineData("01 05 616c696365 00")] // PLEN 0
    public void TryReadUsernamePassword_BadVersionOrAnEmptyField_IsMalformed(string hex) =>
        Assert.Equal(AddressParseStatus.Malformed, Socks5Codec.TryReadUsernamePassword(Hex(hex), out _, out _, out _));

    [Fact]
    public void TryReadRequest_IPv4Connect_IsOk()
    {
        var status = Socks5Codec.TryReadRequest(Hex("05 01 00 01 7f000001 0050 aa"), out var command, out var address, out var consumed);

        Assert.Equal(AddressParseStatus.Ok, status);
        Assert.Equal(Socks5Command.Connect, command);
        Assert.Equal(ShadowsocksAddress.FromIp(IPAddress.Loopback, 80), address);
        Assert.Equal(10, consumed);
    }

    [Fact]
    public void TryReadRequest_DomainConnect_IsOk()
    {
        var status = Socks5Codec.TryReadRequest(Hex("05 01 00 03 0b 6578616d706c652e636f6d 01bb"), out var command, out var address, out var consumed);

        Assert.Equal(AddressParseStatus.Ok, status);
        Assert.Equal(Socks5Command.Connect, command);
        Assert.Equal(ShadowsocksAddress.FromHost("example.com", 443), address);
        Assert.Equal(18, consumed);
    }

    [Fact]
    public void TryReadRequest_IPv6UdpAssociate_IsOk()
    {
        var status = Socks5Codec.TryReadRequest(Hex("05 03 00 04 fe800000000000000000000000000001 1f90"), out var command, out var address, out var consumed);

        Assert.Equal(AddressParseStatus.Ok, status);
        Assert.Equal(Socks5Command.UdpAssociate, command);
        Assert.Equal("fe80::1", address.Ip!.ToString());
        Assert.Equal(8080, address.Port);
        Assert.Equal(22, consumed);
    }

    [Theory]
    [MemberData(nameof(ValidRequests))]
    public void TryReadRequest_EveryPrefix_IsIncomplete(string hex)
    {
        var bytes = Hex(hex);
        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.Equal(AddressParseStatus.Incomplete, Socks5Codec.TryReadRequest(bytes.AsSpan(0, length), out _, out var address, out var consumed));
            Assert.Equal(0, consumed);
            Assert.Equal(default, address);
        }

        Assert.Equal(AddressParseStatus.Ok, Socks5Codec.TryReadRequest(bytes, out _, out _, out var all));
        Assert.Equal(bytes.Length, all);
    }

    [Theory]
    [InlineData((byte)2)]
    [InlineData((byte)9)]
    public void TryReadRequest_OtherCommand_IsReturnedAsSent(byte command)
    {
        var bytes = Hex("05 00 00 01 01020304 0001");
        bytes[1] = command;

        Assert.Equal(AddressParseStatus.Ok, Socks5Codec.TryReadRequest(bytes, out var read, out _, out _));
        Assert.Equal(command, (byte)read);
    }

    [Fact]
    public void TryReadRequest_BadVersion_IsMalformed()
    {
        Assert.Equal(AddressParseStatus.Malformed, Socks5Codec.TryReadRequest(Hex("04 01 00 01 7f000001 0050"), out _, out _, out var consumed));
        Assert.Equal(0, consumed);
        Assert.Equal(AddressParseStatus.Malformed, Socks5Codec.TryReadRequest(Hex("04"), out _, out _, out _));
    }

    [Fact]
    public void TryReadRequest_UnknownAtyp_IsUnsupported() =>
        Assert.Equal(AddressParseStatus.UnsupportedAddressType, Socks5Codec.TryReadRequest(Hex("05 01 00 02 7f000001 0050"), out _, out _, out _));

    [Fact]
    public void TryReadRequest_ZeroLengthDomain_IsMalformed() =>
        Assert.Equal(AddressParseStatus.Malformed, Socks5Codec.TryReadRequest(Hex("05 01 00 03 00 0050"), out _, out _, out _));

    [Fact]
    public void WriteReply_NoBoundAddress_WritesUnspecifiedIPv4()
    {
        var buffer = new byte[32];

        var length = Socks5Codec.WriteReply(Socks5Reply.CommandNotSupported, null, buffer);

        Assert.Equal(Hex("05 07 00 01 00000000 0000"), buffer[..length]);
    }

    [Fact]
    public void WriteReply_BoundIPv6_WritesIt()
    {
        var buffer = new byte[32];

        var length = Socks5Codec.WriteReply(Socks5Reply.Succeeded, ShadowsocksAddress.FromIp(IPAddress.Parse("fe80::1"), 8080), buffer);

        Assert.Equal(Hex("05 00 00 04 fe800000000000000000000000000001 1f90"), buffer[..length]);
    }

    [Fact]
    public void WriteReply_BoundDomain_WritesIt()
    {
        var buffer = new byte[64];

        var length = Socks5Codec.WriteReply(Socks5Reply.HostUnreachable, ShadowsocksAddress.FromHost("a.b", 1), buffer);

        Assert.Equal(Hex("05 04 00 03 03 612e62 0001"), buffer[..length]);
    }

    [Fact]
    public void TryReadUdpHeader_EachAtyp_ReadsAddressAndDataOffset()
    {
        Assert.Equal(AddressParseStatus.Ok, Socks5Codec.TryReadUdpHeader(Hex("0000 00 01 08080808 0035 abcd"), out var fragment, out var address, out var consumed));
        Assert.Equal(0, fragment);
        Assert.Equal(ShadowsocksAddress.FromIp(IPAddress.Parse("8.8.8.8"), 53), address);
        Assert.Equal(10, consumed);

        Assert.Equal(AddressParseStatus.Ok, Socks5Codec.TryReadUdpHeader(Hex("0000 00 03 01 78 0035"), out _, out address, out consumed));
        Assert.Equal(ShadowsocksAddress.FromHost("x", 53), address);
        Assert.Equal(8, consumed);

        Assert.Equal(AddressParseStatus.Ok, Socks5Codec.TryReadUdpHeader(Hex("0000 00 04 00000000000000000000000000000001 0035"), out _, out address, out consumed));
        Assert.Equal(ShadowsocksAddress.FromIp(IPAddress.IPv6Loopback, 53), address);
        Assert.Equal(22, consumed);
    }

    [Fact]
    public void TryReadUdpHeader_Fragment_IsReturnedAsSent()
    {
        Assert.Equal(AddressParseStatus.Ok, Socks5Codec.TryReadUdpHeader(Hex("0000 05 01 08080808 0035"), out var fragment, out _, out _));
        Assert.Equal(5, fragment);
    }

    [Fact]
    public void TryReadUdpHeader_EveryPrefix_IsIncomplete()
    {
        var bytes = Hex("0000 00 03 0b 6578616d706c652e636f6d 01bb");
        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.Equal(AddressParseStatus.Incomplete, Socks5Codec.TryReadUdpHeader(bytes.AsSpan(0, length), out _, out _, out var consumed));
            Assert.Equal(0, consumed);
        }
    }

    [Fact]
    public void TryReadUdpHeader_UnknownAtyp_IsUnsupported() =>
        Assert.Equal(AddressParseStatus.UnsupportedAddressType, Socks5Codec.TryReadUdpHeader(Hex("0000 00 07 00"), out _, out _, out _));

    [Fact]
    public void WriteUdpHeader_ReadBack_RoundTrips()
    {
        var buffer = new byte[3 + AddressHeader.MaxSize];
        foreach (var address in new[]
        {
            ShadowsocksAddress.FromIp(IPAddress.Parse("1.2.3.4"), 5),
            ShadowsocksAddress.FromHost("example.org", 443),
            ShadowsocksAddress.FromIp(IPAddress.Parse("2001:db8::2"), 65535),
        })
        {
            var length = Socks5Codec.WriteUdpHeader(address, buffer);

            Assert.Equal(new byte[3], buffer[..3]);
            Assert.Equal(AddressParseStatus.Ok, Socks5Codec.TryReadUdpHeader(buffer.AsSpan(0, length), out var fragment, out var read, out var consumed));
            Assert.Equal(0, fragment);
            Assert.Equal(address, read);
            Assert.Equal(length, consumed);
        }
    }

    [Fact]
    public void TryReadRequest_RandomBytes_NeverThrows()
    {
        var random = new Random(1);
        var buffer = new byte[48];
        for (var i = 0; i < 20_000; i++)
        {
            random.NextBytes(buffer);
            buffer[0] = 5;
            buffer[3] = (byte)random.Next(0, 6);
            var length = random.Next(0, buffer.Length + 1);
            _ = Socks5Codec.TryReadRequest(buffer.AsSpan(0, length), out _, out _, out _);
            _ = Socks5Codec.TryReadGreeting(buffer.AsSpan(0, length), out _, out _);
            _ = Socks5Codec.TryReadUdpHeader(buffer.AsSpan(0, length), out _, out _, out _);
        }
    }

    private static byte[] Hex(string hex) => AddressHeaderTests.Hex(hex);
}
