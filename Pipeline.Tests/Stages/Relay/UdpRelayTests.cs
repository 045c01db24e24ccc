using System.Buffers.Binary;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>UDP through our local and our server on loopback: real sockets, a real echo destination.</summary>
public sealed class UdpRelayTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    public static TheoryData<string> AllMethods() => new(CipherCatalog.All.Select(c => c.Name));

    [Theory]
    [MemberData(nameof(AllMethods))]
    public async Task EveryMethod_EchoesByteExact(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var chain = UdpRelayChain.Start(method);
        using var client = await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token);
        foreach (var size in new[] { 1, 1400, 8000 })
        {
            var payload = RandomNumberGenerator.GetBytes(size);
            await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
            Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
        }
    }

    [Fact]
    public async Task SeveralAssociationsOpenAtOnce_EachIsAnsweredAndServed()
    {
        // The associate stage awaited each association's hold, one at a time: a second client's UDP ASSOCIATE was
        // answered only when the first client's control connection closed.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var chain = UdpRelayChain.Start("aes-256-gcm");
        var clients = new List<Socks5UdpTestClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                clients.Add(await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token)); // the others stay open
            }

            foreach (var client in clients)
            {
                var payload = RandomNumberGenerator.GetBytes(100);
                await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
                Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
            }
        }
        finally
        {
            clients.ForEach(static c => c.Dispose());
        }
    }

    [Theory]
    [InlineData("::1")]
    [InlineData("localhost")]
    [InlineData("127.0.0.1")]
    public async Task Ipv4Ipv6AndDomainTargets(string target)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(target == "::1" ? IPAddress.IPv6Loopback : IPAddress.Loopback);
        await using var chain = UdpRelayChain.Start("aes-256-gcm");
        using var client = await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token);
        var payload = RandomNumberGenerator.GetBytes(500);
        await client.SendAsync(target, echo.EndPoint.Port, payload, cancel.Token);
        Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
    }

    [Fact]
    public async Task TwentyClients_TenThousandDatagrams_EveryReplyReachesItsOwnClient()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var chain = UdpRelayChain.Start("chacha20-ietf-poly1305");
        const int clients = 20;
        const int perClient = 500;
        var results = await Task.WhenAll(Enumerable.Range(0, clients).Select(async id =>
        {
            using var client = await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token);
            var seen = new HashSet<int>();
            var foreign = 0;
            for (var seq = 0; seq < perClient; seq++)
            {
                var payload = new byte[64];
                BinaryPrimitives.WriteInt32BigEndian(payload, id);
                BinaryPrimitives.WriteInt32BigEndian(payload.AsSpan(4), seq);
                RandomNumberGenerator.Fill(payload.AsSpan(8));
                for (var attempt = 0; attempt < 5 && !seen.Contains(seq); attempt++)
                {
                    // UDP may lose a datagram under load; a retry is what a real client does. Crossing is never allowed.
                    await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
                    while (await client.TryReceiveAsync(TimeSpan.FromSeconds(1)) is { } reply)
                    {
                        if (BinaryPrimitives.ReadInt32BigEndian(reply) != id)
                        {
                            foreign++;
                            continue;
                        }

                        seen.Add(BinaryPrimitives.ReadInt32BigEndian(reply.AsSpan(4)));
                        if (seen.Contains(seq))
                        {
                            break;
                        }
                    }
                }
            }

            return (Seen: seen.Count, Foreign: foreign);
        }));

        Assert.All(results, r => Assert.Equal(0, r.Foreign));
        Assert.All(results, r => Assert.Equal(perClient, r.Seen));
        Assert.True(echo.Received >= clients * perClient);
    }

    /// <summary>
    /// A server on <c>[::]</c> (dual-stack, the usual <c>-s ::</c>) receives IPv4 clients as IPv4-mapped IPv6: the
    /// receive path reads the kernel's address, unmaps it, and the reply goes back to the plain IPv4 client with the
    /// destination's address as IPv4 in its header.
    /// </summary>
    [Fact]
    public async Task ADualStackServer_AnswersIpv4Clients_WithPlainIpv4()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var options = RelayChain.Options("chacha20-ietf-poly1305", "dual-stack", new IPEndPoint(IPAddress.IPv6Any, 0));
        await using var server = UdpRelayChain.StartServer(options, listen: new IPEndPoint(IPAddress.IPv6Any, 0));
        var serverV4 = new IPEndPoint(IPAddress.Loopback, server.LocalEndPoint.Port);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        var payload = RandomNumberGenerator.GetBytes(64);
        await client.SendToAsync(UdpPackets.Seal(options, ShadowsocksAddress.FromEndPoint(echo.EndPoint), payload), SocketFlags.None, serverV4, cancel.Token);

        var reply = new byte[2048];
        var result = await client.ReceiveFromAsync(reply, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancel.Token);
        Assert.Equal(serverV4, result.RemoteEndPoint);
        var (source, data, addressType) = UdpPackets.Open(options, reply.AsSpan(0, result.ReceivedBytes));
        Assert.Equal(1, addressType); // ATYP 1: IPv4, not the mapped IPv6 form
        Assert.Equal(echo.EndPoint, new IPEndPoint(source.Ip!, source.Port));
        Assert.Equal(payload, data);
    }

    /// <summary>
    /// A local or tunnel given its server as an IPv4-mapped address (<c>-s ::ffff:127.0.0.1</c>, or a name whose AAAA
    /// record is one) reaches it as the IPv4 address: its datagrams went to an IPv6-only socket that could not send
    /// them, and no answer came (ss-local's arrive).
    /// </summary>
    [Fact]
    public async Task AServerGivenAsAnIPv4MappedAddress_IsReached_ByTheLocalAndTheTunnel()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var options = RelayChain.Options("aes-256-gcm", "mapped", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = UdpRelayChain.StartServer(options);
        var mapped = new IPEndPoint(server.LocalEndPoint.Address.MapToIPv6(), server.LocalEndPoint.Port);

        var (localUdp, localTcp) = UdpRelayChain.StartLocal(options with { Server = mapped }, mapped);
        await using (localUdp)
        await using (localTcp)
        {
            using var client = await Socks5UdpTestClient.AssociateAsync(localTcp.LocalEndPoint, cancel.Token);
            var payload = RandomNumberGenerator.GetBytes(100);
            await client.SendAsync("127.0.0.1", echo.EndPoint.Port, payload, cancel.Token);
            Assert.Equal(payload, await client.ReceiveAsync(cancel.Token));
        }

        await using var tunnel = new TunnelUdpRelay(options with { Server = mapped, TunnelDestination = ShadowsocksAddress.FromEndPoint(echo.EndPoint) }, mapped, ProgramScheduler.Instance);
        tunnel.Start(new IPEndPoint(IPAddress.Loopback, 0));
        using var plain = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        plain.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await plain.SendToAsync("tunnelled"u8.ToArray(), SocketFlags.None, tunnel.LocalEndPoint, cancel.Token);
        var reply = new byte[2048];
        var received = await plain.ReceiveAsync(reply, SocketFlags.None, cancel.Token);
        Assert.Equal("tunnelled"u8.ToArray(), reply[..received]);
    }

    [Fact]
    public async Task AReplayedDatagram_IsDroppedUnanswered_FromAnyPort()
    {
        // A recorded datagram sent again got through and was answered (ss-server drops it: probe resistance).
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var options = RelayChain.Options("aes-256-gcm", "replay", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = UdpRelayChain.StartServer(options);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        other.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var recorded = UdpPackets.Seal(options, ShadowsocksAddress.FromEndPoint(echo.EndPoint), "once"u8);

        await client.SendToAsync(recorded, SocketFlags.None, server.LocalEndPoint, cancel.Token);
        var reply = new byte[2048];
        var received = await client.ReceiveAsync(reply, SocketFlags.None, cancel.Token);
        Assert.Equal("once"u8.ToArray(), UdpPackets.Open(options, reply.AsSpan(0, received)).Payload);

        await client.SendToAsync(recorded, SocketFlags.None, server.LocalEndPoint, cancel.Token);
        await other.SendToAsync(recorded, SocketFlags.None, server.LocalEndPoint, cancel.Token);
        await client.SendToAsync(UdpPackets.Seal(options, ShadowsocksAddress.FromEndPoint(echo.EndPoint), "fresh"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        received = await client.ReceiveAsync(reply, SocketFlags.None, cancel.Token); // the fresh one's answer, not a replay's
        Assert.Equal("fresh"u8.ToArray(), UdpPackets.Open(options, reply.AsSpan(0, received)).Payload);
        Assert.False(other.Poll(300_000, SelectMode.SelectRead), "a replay from another port was answered");
        Assert.Equal(2, echo.Received);
    }

    [Fact]
    public async Task ItsOwnAnswer_SentBackToTheServer_IsDroppedUnanswered()
    {
        // The server's answer, sent back to it from another port, read under the one key as a request for the echo
        // destination (its address is in the answer's header) and was sent there and answered (ss-server drops it).
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var options = RelayChain.Options("aes-256-gcm", "reflect", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = UdpRelayChain.StartServer(options);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        other.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        await client.SendToAsync(UdpPackets.Seal(options, ShadowsocksAddress.FromEndPoint(echo.EndPoint), "once"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        var reply = new byte[2048];
        var received = await client.ReceiveAsync(reply, SocketFlags.None, cancel.Token);
        Assert.Equal("once"u8.ToArray(), UdpPackets.Open(options, reply.AsSpan(0, received)).Payload);

        await other.SendToAsync(reply.AsMemory(0, received), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        await other.SendToAsync(UdpPackets.Seal(options, ShadowsocksAddress.FromEndPoint(echo.EndPoint), "fresh"u8), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        received = await other.ReceiveAsync(reply, SocketFlags.None, cancel.Token); // the fresh one's answer, not the reflection's
        Assert.Equal("fresh"u8.ToArray(), UdpPackets.Open(options, reply.AsSpan(0, received)).Payload);
        Assert.False(other.Poll(300_000, SelectMode.SelectRead), "the server's own answer, sent back to it, was answered");
        Assert.Equal(2, echo.Received);
    }

    /// <summary>
    /// Backpressure: bursts far larger than the first stage's capacity (2 here) are not dropped by the relay. The
    /// datagram that finds the stage full waits for room, the socket leaves the loop's epoll set meanwhile, and the
    /// rest wait in the kernel's queue; every datagram comes back. (Bursts of 40, each answered before the next, stay
    /// within default kernel socket buffers, so neither the relay's nor the echo's kernel queue can overflow.)
    /// </summary>
    [Fact]
    public async Task BurstsLargerThanTheStagesCapacity_WaitInTheKernel_AndEveryDatagramComesBack()
    {
        const int Bursts = 8;
        const int Burst = 40;
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var options = RelayChain.Options("aes-256-gcm", "burst", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Pipeline = PipelineOptions.Default with { Udp = new StageOptions(1, 2) },
        };
        await using var server = UdpRelayChain.StartServer(options);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var target = ShadowsocksAddress.FromEndPoint(echo.EndPoint);
        var reply = new byte[2048];

        for (var burst = 0; burst < Bursts; burst++)
        {
            for (var i = 0; i < Burst; i++)
            {
                client.SendTo(UdpPackets.Seal(options, target, BitConverter.GetBytes((burst * Burst) + i)), server.LocalEndPoint);
            }

            var seen = new HashSet<int>();
            while (seen.Count < Burst)
            {
                using var quiet = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token);
                quiet.CancelAfter(TimeSpan.FromSeconds(5));
                int received;
                try
                {
                    received = await client.ReceiveAsync(reply, SocketFlags.None, quiet.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"burst {burst}: {seen.Count} of {Burst} datagrams came back");
                    return;
                }

                seen.Add(BitConverter.ToInt32(UdpPackets.Open(options, reply.AsSpan(0, received)).Payload));
            }

            Assert.Equal(Enumerable.Range(burst * Burst, Burst), seen.Order());
        }
    }

    [Fact]
    public async Task BadDatagrams_AreDroppedAndCounted_OtherClientsUnaffected()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var drops = new DropRecorder();
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        var options = RelayChain.Options("aes-128-gcm", "bad-input", new IPEndPoint(IPAddress.IPv6Loopback, 0));
        await using var server = UdpRelayChain.StartServer(options, listen: new IPEndPoint(IPAddress.IPv6Loopback, 0));
        using var attacker = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        attacker.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));

        // Truncated (shorter than salt + tag), random (fails authentication), an unknown address type inside a valid
        // packet, and one over 65,507 bytes (possible over IPv6).
        var unknownAtyp = new byte[UdpPacketCodec.MaxPacketSize(options.Cipher, 20)];
        UdpPacketCodec.Encrypt(options.Cipher, options.MasterKey, [9, .. new byte[19]], unknownAtyp);
        byte[][] bad = [new byte[5], RandomNumberGenerator.GetBytes(100), unknownAtyp, new byte[65_508]];
        foreach (var datagram in bad)
        {
            await attacker.SendToAsync(datagram, SocketFlags.None, server.LocalEndPoint, cancel.Token);
        }

        // A good client still gets its echo.
        using var good = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        good.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        var payload = RandomNumberGenerator.GetBytes(300);
        await good.SendToAsync(UdpPackets.Seal(options, ShadowsocksAddress.FromEndPoint(echo.EndPoint), payload), SocketFlags.None, server.LocalEndPoint, cancel.Token);
        var reply = new byte[65_536];
        var received = await good.ReceiveAsync(reply, SocketFlags.None, cancel.Token);
        var (source, data, _) = UdpPackets.Open(options, reply.AsSpan(0, received));
        Assert.Equal(echo.EndPoint.Port, source.Port);
        Assert.Equal(payload, data);

        // Nothing came back to the attacker, and each bad datagram was counted under its reason.
        attacker.Blocking = false;
        Assert.Equal(0, attacker.Available);
        await drops.WaitForAsync(r => r >= 1, "authentication failed", 2, cancel.Token);
        await drops.WaitForAsync(r => r >= 1, "unknown address type", 1, cancel.Token);
        await drops.WaitForAsync(r => r >= 1, "oversized", 1, cancel.Token);
        Assert.Equal(0, echo.Received - 1);
    }

    [Fact]
    public async Task ADatagramTooLargeOnceSealed_IsDroppedAsOversized_AndTheNextGoesThrough()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var drops = new DropRecorder();
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var chain = UdpRelayChain.Start("aes-256-gcm");
        using var client = await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token);

        // 65,500 bytes with its SOCKS5 header reach the local; sealed (a 32-byte salt, a 16-byte tag) they would be
        // 65,545, past what one IPv4 datagram holds: the kernel refuses the send (EMSGSIZE).
        await client.SendRawAsync(Socks5UdpTestClient.Request("127.0.0.1", echo.EndPoint.Port, new byte[65_490]), cancel.Token);
        await drops.WaitForAsync(r => r >= 1, "oversized", 1, cancel.Token);

        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, "small"u8, cancel.Token);
        Assert.Equal("small"u8.ToArray(), await client.ReceiveAsync(cancel.Token));
    }

    [Fact]
    public async Task Socks5Fragments_UnknownAddressTypes_AndCutHeaders_AreDroppedByTheLocal()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var drops = new DropRecorder();
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var chain = UdpRelayChain.Start("aes-256-gcm");
        using var client = await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token);
        var fragment = Socks5UdpTestClient.Request("127.0.0.1", echo.EndPoint.Port, "fragment"u8);
        fragment[2] = 1;
        await client.SendRawAsync(fragment, cancel.Token);
        await client.SendRawAsync([0, 0, 0, 7, 1, 2, 3], cancel.Token);

        // An empty datagram, one shorter than RSV and FRAG, and one cut inside its IPv4 address: none is a request.
        await client.SendRawAsync([], cancel.Token);
        await client.SendRawAsync([0, 0], cancel.Token);
        await client.SendRawAsync([0, 0, 0, 1, 127, 0], cancel.Token);
        await drops.WaitForAsync(r => r >= 1, "socks5 fragment", 1, cancel.Token);
        await drops.WaitForAsync(r => r >= 1, "unknown address type", 1, cancel.Token);
        await drops.WaitForAsync(r => r >= 3, "malformed socks5 header", 3, cancel.Token);

        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, "whole"u8, cancel.Token);
        Assert.Equal("whole"u8.ToArray(), await client.ReceiveAsync(cancel.Token));
        Assert.Equal(1, echo.Received);
    }

    [Fact]
    public async Task AssociationEndsWithItsControlConnection()
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var chain = UdpRelayChain.Start("aes-256-gcm");
        using var client = await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token);
        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, "one"u8, cancel.Token);
        Assert.Equal("one"u8.ToArray(), await client.ReceiveAsync(cancel.Token));
        Assert.Equal(1, chain.LocalUdp.NatEntries);

        client.CloseControl();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (chain.LocalUdp.NatEntries != 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, cancel.Token);
        }

        Assert.Equal(0, chain.LocalUdp.NatEntries);
        await client.SendAsync("127.0.0.1", echo.EndPoint.Port, "two"u8, cancel.Token);
        Assert.Null(await client.TryReceiveAsync(TimeSpan.FromMilliseconds(500)));
        Assert.Equal(1, echo.Received);
    }

    [Fact]
    public async Task AssociationEndsWithItsControlConnection_WhileAnotherFromTheSameAddressGoesOn()
    {
        // NAT entries were kept per client address: on loopback, where every client is 127.0.0.1, the entry (and
        // outbound socket) of a closed association stayed for udp_timeout as long as any other association lived.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var chain = UdpRelayChain.Start("aes-256-gcm");
        using var staying = await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token);
        using var leaving = await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token);
        await staying.SendAsync("127.0.0.1", echo.EndPoint.Port, "one"u8, cancel.Token);
        Assert.Equal("one"u8.ToArray(), await staying.ReceiveAsync(cancel.Token));
        await leaving.SendAsync("127.0.0.1", echo.EndPoint.Port, "two"u8, cancel.Token);
        Assert.Equal("two"u8.ToArray(), await leaving.ReceiveAsync(cancel.Token));
        Assert.Equal(2, chain.LocalUdp.NatEntries);

        leaving.CloseControl();
        while (chain.LocalUdp.NatEntries != 1)
        {
            await Task.Delay(20, cancel.Token); // bounded by the test's deadline only
        }

        await staying.SendAsync("127.0.0.1", echo.EndPoint.Port, "three"u8, cancel.Token);
        Assert.Equal("three"u8.ToArray(), await staying.ReceiveAsync(cancel.Token));
        Assert.Equal(1, chain.LocalUdp.NatEntries);
    }

    [Fact]
    public async Task AClientSendingFromTheAddressItsRequestNamed_IsServed_WhileItsControlConnectionLives()
    {
        // RFC 1928 § 7: DST.ADDR is the address the client expects to send from. Only the control connection's
        // address was taken, so a client on two addresses (TCP from 127.0.0.1, UDP from 127.0.0.2, as it said) had its
        // datagrams dropped as "no association"; ss-local and shadowsocks-rust relay them.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        await using var chain = UdpRelayChain.Start("aes-256-gcm");
        using var association = await Socks5UdpTestClient.AssociateAsync(chain.Local.LocalEndPoint, cancel.Token, from: IPAddress.Parse("127.0.0.2"));
        await association.SendAsync("127.0.0.1", echo.EndPoint.Port, "named"u8, cancel.Token);
        Assert.Equal("named"u8.ToArray(), await association.ReceiveAsync(cancel.Token));
        Assert.True(chain.LocalUdp.Associations.Contains(IPAddress.Parse("127.0.0.2")));

        association.CloseControl();
        while (chain.LocalUdp.Associations.Contains(IPAddress.Parse("127.0.0.2")) || chain.LocalUdp.NatEntries != 0)
        {
            await Task.Delay(20, cancel.Token); // bounded by the test's deadline only
        }
    }

    [Fact]
    public async Task RepliesWhoseAddressHeaderDoesNotParse_AreDroppedByTheLocal_AndTheOthersGoOn()
    {
        // The local passed a decrypted reply on to its SOCKS5 client without reading its address header; ss-local
        // drops it. The server here is a raw socket that seals its replies with the same key.
        using var cancel = new CancellationTokenSource(s_timeout);
        using var drops = new DropRecorder();
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var serverAt = (IPEndPoint)server.LocalEndPoint!;
        var options = RelayChain.Options("aes-256-gcm", "bad-reply-header", new IPEndPoint(IPAddress.Loopback, 0), serverAt);
        var (udp, tcp) = UdpRelayChain.StartLocal(options, serverAt);
        await using var _ = udp;
        await using var __ = tcp;
        using var client = await Socks5UdpTestClient.AssociateAsync(tcp.LocalEndPoint, cancel.Token);

        await client.SendAsync("127.0.0.1", 9, "ask"u8, cancel.Token);
        var asked = await DatagramsFrom.ReceiveFromAsync(server, s_timeout) ?? throw new TimeoutException("the local sent nothing to the server");
        Assert.Equal("ask"u8.ToArray(), UdpPackets.Open(options, asked.Data).Payload);

        // ATYP 9; a name longer than the datagram; nothing at all.
        foreach (var plain in new byte[][] { [9, 1, 2, 3, 4, 0, 53, 7], [3, 200, (byte)'a', 0, 53], [] })
        {
            var sealedReply = new byte[UdpPacketCodec.MaxPacketSize(options.Cipher, plain.Length)];
            var length = UdpPacketCodec.Encrypt(options.Cipher, options.MasterKey, plain, sealedReply);
            await server.SendToAsync(sealedReply.AsMemory(0, length), SocketFlags.None, asked.From, cancel.Token);
        }

        await drops.WaitForAsync(r => r >= 1, "unknown address type from the server", 1, cancel.Token);
        await drops.WaitForAsync(r => r >= 2, "malformed address header from the server", 2, cancel.Token);

        var good = UdpPackets.Seal(options, ShadowsocksAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 9)), "good"u8);
        await server.SendToAsync(good, SocketFlags.None, asked.From, cancel.Token);
        Assert.Equal("good"u8.ToArray(), await client.ReceiveAsync(cancel.Token)); // the first the client gets
    }

    /// <summary>Listens to <c>pipeline.udp.dropped</c> and tallies by reason.</summary>
    private sealed class DropRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, long> _byReason = [];

        public DropRecorder()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == "pipeline.udp.dropped")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == TagNames.Reason && tag.Value is string reason)
                    {
                        lock (_byReason)
                        {
                            _byReason[reason] = _byReason.GetValueOrDefault(reason) + value;
                        }
                    }
                }
            });
            _listener.Start();
        }

        public async Task WaitForAsync(Func<long, bool> condition, string reason, int atLeast, CancellationToken cancellationToken)
        {
            while (true)
            {
                long count;
                lock (_byReason)
                {
                    count = _byReason.GetValueOrDefault(reason);
                }

                if (condition(count) && count >= atLeast)
                {
                    return;
                }

                if (cancellationToken.IsCancellationRequested)
                {
                    Assert.Fail($"expected at least {atLeast} drops for '{reason}', saw {count}");
                }

                await Task.Delay(20, CancellationToken.None);
            }
        }

        public void Dispose() => _listener.Dispose();
    }
}
