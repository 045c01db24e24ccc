using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Dns;

namespace Shadowsocks.Pipeline.Tests.Core.Dns;

/// <summary>The binary codec on hand-built messages (RFC 1035 § 4.1): every bad shape is a status, never an exception.</summary>
public sealed class DnsMessageTests
{
    private const ushort Id = 0x1234;

    // Header: ID, flags QR|RD|RA, 1 question, N answers. Question: example.test A IN.
    private static readonly byte[] s_question = [7, .. "example"u8, 4, .. "test"u8, 0, 0, 1, 0, 1];

    [Fact]
    public void QueryHasTheWireLayout()
    {
        var buffer = new byte[512];
        var length = DnsMessage.WriteQuery(Id, "example.test", DnsRecordType.A, buffer);
        Assert.Equal([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, .. s_question], buffer[..length]);
        Assert.Equal(0, DnsMessage.WriteQuery(Id, new string('a', 64) + ".test", DnsRecordType.A, buffer));
        Assert.Equal(0, DnsMessage.WriteQuery(Id, "a..test", DnsRecordType.A, buffer));
        Assert.Equal(0, DnsMessage.WriteQuery(Id, "example.test..", DnsRecordType.A, buffer));
        Assert.Equal(length, DnsMessage.WriteQuery(Id, "example.test.", DnsRecordType.A, buffer));
        Assert.Equal(0, DnsMessage.WriteQuery(Id, "ex\u00e4mple.test", DnsRecordType.A, buffer));
    }

    [Fact]
    public void CompressedCnameChainIsFollowed()
    {
        // example.test CNAME (ptr 12 -> "example.test") www.<ptr to "test" at 20> ; www.test A 10.0.0.9
        byte[] message =
        [
            .. Header(2), .. s_question,
            0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 6, 3, .. "www"u8, 0xC0, 20,
            3, .. "www"u8, 0xC0, 20, 0, 1, 0, 1, 0, 0, 0, 90, 0, 4, 10, 0, 0, 9,
        ];
        Assert.Equal(DnsParseStatus.Ok, DnsMessage.TryParseAnswer(message, Id, "example.test", DnsRecordType.A, out var answer));
        Assert.Equal([IPAddress.Parse("10.0.0.9")], answer.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(30), answer.Ttl); // the smallest TTL along the chain
    }

    [Fact]
    public void RecordsForOtherNamesAreNotTaken()
    {
        byte[] message = [.. Header(1), .. s_question, 5, .. "other"u8, 0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 6, 6, 6, 6];
        Assert.Equal(DnsParseStatus.Ok, DnsMessage.TryParseAnswer(message, Id, "example.test", DnsRecordType.A, out var answer));
        Assert.Empty(answer.Addresses);
    }

    [Theory]
    [InlineData(3, 600u, 60u, 60)] // NXDOMAIN: the SOA's MINIMUM, smaller than its TTL
    [InlineData(0, 45u, 900u, 45)] // NODATA: the SOA's TTL, smaller than its MINIMUM
    [InlineData(3, 0x8000_0000u, 60u, 0)] // a TTL with its top bit set is 0
    public void ANegativeAnswer_TakesItsNegativeTtlFromTheSoa(int rcode, uint ttl, uint minimum, int expected)
    {
        // Authority: test SOA ns.test hostmaster.test 1 1200 180 1209600 MINIMUM (names compressed against the question's "test").
        byte[] soa =
        [
            0xC0, 20, 0, 6, 0, 1, .. Be(ttl), 0, 29, 2, .. "ns"u8, 0xC0, 20, 1, (byte)'h', 0xC0, 20,
            .. Be(1), .. Be(1200), .. Be(180), .. Be(1_209_600), .. Be(minimum),
        ];
        byte[] message = [0x12, 0x34, 0x81, (byte)(0x80 | rcode), 0, 1, 0, 0, 0, 1, 0, 0, .. s_question, .. soa];
        Assert.Equal(DnsParseStatus.Ok, DnsMessage.TryParseAnswer(message, Id, "example.test", DnsRecordType.A, out var answer));
        Assert.Empty(answer.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(expected), answer.NegativeTtl);

        // Without an SOA, or with an authority section that does not parse: none (the answer itself still counts).
        Assert.Equal(DnsParseStatus.Ok, DnsMessage.TryParseAnswer(message[..^soa.Length], Id, "example.test", DnsRecordType.A, out var bare));
        Assert.Null(bare.NegativeTtl);
        Assert.Equal(DnsParseStatus.Ok, DnsMessage.TryParseAnswer(message[..^4], Id, "example.test", DnsRecordType.A, out var cut));
        Assert.Null(cut.NegativeTtl);
    }

    private static byte[] Be(uint value) => [(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value];

    [Theory]
    [InlineData(0x8000_0000u)]
    [InlineData(0xFFFF_FFFFu)]
    public void ATtlWithItsTopBitSet_IsZero(uint ttl)
    {
        // RFC 2181 § 8: a TTL is 31 bits; one with the top bit set is taken as 0. It was taken as 68 to 136 years (and
        // the resolver cached the answer for its longest, an hour, instead of its shortest).
        byte[] message =
        [
            .. Header(1), .. s_question,
            0xC0, 12, 0, 1, 0, 1, (byte)(ttl >> 24), (byte)(ttl >> 16), (byte)(ttl >> 8), (byte)ttl, 0, 4, 10, 0, 0, 1,
        ];
        Assert.Equal(DnsParseStatus.Ok, DnsMessage.TryParseAnswer(message, Id, "example.test", DnsRecordType.A, out var answer));
        Assert.Equal([IPAddress.Parse("10.0.0.1")], answer.Addresses);
        Assert.Equal(TimeSpan.Zero, answer.Ttl);
    }

    [Theory]
    [InlineData(5)] // inside the header
    [InlineData(20)] // inside the question
    [InlineData(40)] // inside the answer's RDATA
    public void TruncatedIsMalformed(int length)
    {
        byte[] message = [.. Header(1), .. s_question, 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1];
        Assert.Equal(DnsParseStatus.Malformed, DnsMessage.TryParseAnswer(message[..length], Id, "example.test", DnsRecordType.A, out _));
    }

    [Fact]
    public void PointerLoopsAndForwardPointersAreRejected()
    {
        byte[] self = [.. Header(1), .. s_question, 0xC0, 30, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1];
        Assert.Equal(DnsParseStatus.CompressionLoop, DnsMessage.TryParseAnswer(self, Id, "example.test", DnsRecordType.A, out _));

        // Two labels pointing at each other through a backward then forward hop.
        byte[] pingPong = [.. Header(1), .. s_question, 1, (byte)'a', 0xC0, 30, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1];
        Assert.Equal(DnsParseStatus.CompressionLoop, DnsMessage.TryParseAnswer(pingPong, Id, "example.test", DnsRecordType.A, out _));
    }

    [Fact]
    public void WrongIdQuestionOrSizeAreStatuses()
    {
        byte[] message = [.. Header(0), .. s_question];
        Assert.Equal(DnsParseStatus.WrongId, DnsMessage.TryParseAnswer(message, Id + 1, "example.test", DnsRecordType.A, out _));
        Assert.Equal(DnsParseStatus.WrongQuestion, DnsMessage.TryParseAnswer(message, Id, "example.tesu", DnsRecordType.A, out _));
        Assert.Equal(DnsParseStatus.WrongQuestion, DnsMessage.TryParseAnswer(message, Id, "example.test", DnsRecordType.Aaaa, out _));
        Assert.Equal(DnsParseStatus.Oversized, DnsMessage.TryParseAnswer(new byte[70_000], Id, "example.test", DnsRecordType.A, out _));

        var query = message.ToArray();
        query[2] = 0x01; // QR = 0: a query, not an answer
        Assert.Equal(DnsParseStatus.WrongId, DnsMessage.TryParseAnswer(query, Id, "example.test", DnsRecordType.A, out _));
    }

    [Fact]
    public void RandomBytesNeverThrow()
    {
        var random = new Random(1234);
        for (var i = 0; i < 20_000; i++)
        {
            var message = new byte[random.Next(0, 300)];
            random.NextBytes(message);
            if (message.Length >= 2 && random.Next(2) == 0)
            {
                message[0] = 0x12;
                message[1] = 0x34;
            }

            _ = DnsMessage.TryParseAnswer(message, Id, "example.test", DnsRecordType.A, out _);
        }
    }

    [Fact]
    public void ResolvConfHostsAndServerLists()
    {
        Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.53"), 53), new IPEndPoint(IPAddress.Parse("fe80::1"), 53)],
            ResolvConf.Parse(["# comment", "search example", "nameserver 10.0.0.53", "nameserver fe80::1%nosuchif0", "options ndots:2"]));
        Assert.Equal(ResolvConf.Fallback, ResolvConf.Parse(["search example"]));

        var hosts = HostsFile.Parse(["127.0.0.1 localhost me", "::1 localhost", "# 1.2.3.4 hidden", "bogus line"]);
        Assert.Equal([IPAddress.Loopback, IPAddress.IPv6Loopback], hosts["LOCALHOST"]);
        Assert.False(hosts.ContainsKey("hidden"));

        Assert.True(ResolvConf.TryParseServers("127.0.0.1:5353, 1.1.1.1,[::1]:53,::1", out var servers, out _));
        Assert.Equal(["127.0.0.1:5353", "1.1.1.1:53", "[::1]:53", "[::1]:53"], servers.Select(s => s.ToString()));
        Assert.False(ResolvConf.TryParseServers("127.0.0.1:5353,nonsense", out _, out var error));
        Assert.StartsWith("nameserver: 'nonsense'", error);
    }

    [Fact]
    public void ResolvConf_ALinkLocalServer_KeepsItsInterface()
    {
        // "nameserver fe80::1%eth0" (a router's RDNSS, as NetworkManager writes it) lost its interface: a link-local
        // address without one cannot be sent to (EINVAL), so the only name server of such a host always failed.
        var server = Assert.Single(ResolvConf.Parse(["nameserver fe80::1%lo"]));
        Assert.Equal(IPAddress.Parse("fe80::1"), new IPAddress(server.Address.GetAddressBytes()));
        Assert.Equal(53, server.Port);
        Assert.NotEqual(0, server.Address.ScopeId);
        using var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        // The resolver connects each query's socket: without the interface, InvalidArgument. (lo has no route to
        // fe80::1, so NetworkUnreachable is what a kept interface gets here.)
        var error = Record.Exception(() => socket.Connect(server)) as SocketException;
        Assert.NotEqual(SocketError.InvalidArgument, error?.SocketErrorCode);

        // An interface that is not there (a stale file): the address as before, without it.
        Assert.Equal(new IPEndPoint(IPAddress.Parse("fe80::1"), 53), Assert.Single(ResolvConf.Parse(["nameserver fe80::1%nosuchif9"])));
    }

    private static byte[] Header(int answers) => [0x12, 0x34, 0x81, 0x80, 0, 1, 0, (byte)answers, 0, 0, 0, 0];
}
