using System.Net;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>SIP022 UDP packets between the two ends of this codec: sessions, replies, replays, time and tampering.</summary>
public sealed class Udp2022CodecTests
{
    private static readonly byte[] s_payload = [.. Header(), .. "a datagram"u8];

    public static TheoryData<string> Methods() => CipherMethods.Sip022();

    [Theory]
    [MemberData(nameof(Methods))]
    public void ClientToServer_AndTheReply_ComeThroughIntact(string method)
    {
        var codec = Codec(method, out _);
        using var client = codec.NewClientSession();

        var packet = SealFromClient(codec, client, s_payload);
        Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, packet, null, out var session, out var offset, out var length));
        Assert.NotNull(session);
        Assert.Equal(client.SessionId, session.ClientSessionId);
        Assert.Equal(s_payload, packet.AsSpan(offset, length).ToArray());

        byte[] reply = [.. Header(), .. RandomNumberGenerator.GetBytes(1400)];
        var back = SealFromServer(codec, session, reply);
        Assert.Equal(Udp2022Status.Ok, codec.OpenAtClient(client, back, out offset, out length));
        Assert.Equal(reply, back.AsSpan(offset, length).ToArray());
        session.Dispose();
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void APacketOpenedTwice_IsAReplay_AndLateOnesWithinTheWindowAreTaken(string method)
    {
        var codec = Codec(method, out _);
        using var client = codec.NewClientSession();
        var packets = Enumerable.Range(0, 1100).Select(_ => SealFromClient(codec, client, s_payload)).ToArray();

        Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, Copy(packets[1099]), null, out var session, out _, out _));
        Assert.Equal(Udp2022Status.Replayed, OpenAtServer(codec, Copy(packets[1099]), session, out _, out _, out _));
        Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, Copy(packets[100]), session, out _, out _, out _)); // 999 behind: in the window
        Assert.Equal(Udp2022Status.Replayed, OpenAtServer(codec, Copy(packets[100]), session, out _, out _, out _));
        Assert.Equal(Udp2022Status.Replayed, OpenAtServer(codec, Copy(packets[50]), session, out _, out _, out _)); // 1,049 behind: out of it
        session!.Dispose();
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void APacketWithABadTimestamp_LeavesItsIdFree_ForTheGenuinePacketOfThatId(string method)
    {
        // SIP022 § 3.2.4: the sliding window MUST NOT be updated before the header is validated (type, timestamp). A
        // packet that authenticates but is 40 s old is refused, and the genuine packet of the same ID is still taken:
        // at the server (client packets) and at the client (server packets).
        var cipher = Cipher(method);
        var psk = RandomNumberGenerator.GetBytes(cipher.KeySize);
        var now = new ManualTimeProvider();
        var past = new ManualTimeProvider();
        now.Advance(TimeSpan.FromHours(1));
        past.Advance(TimeSpan.FromHours(1) - TimeSpan.FromSeconds(40));
        var codec = new Udp2022Codec(cipher, psk, now);
        var stale = new Udp2022Codec(cipher, psk, past);
        using var client = codec.NewClientSession();

        Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, SealFromClient(codec, client, s_payload), null, out var session, out _, out _));
        Assert.Equal(Udp2022Status.StaleTimestamp, OpenAtServer(codec, SealFromClient(stale, client, s_payload), session, out _, out _, out _));
        client.NextPacketId = 1;
        Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, SealFromClient(codec, client, s_payload), session, out _, out _, out _));

        Assert.Equal(Udp2022Status.Ok, codec.OpenAtClient(client, SealFromServer(codec, session!, s_payload), out _, out _));
        Assert.Equal(Udp2022Status.StaleTimestamp, codec.OpenAtClient(client, SealFromServer(stale, session!, s_payload), out _, out _));
        session!.NextPacketId = 1;
        Assert.Equal(Udp2022Status.Ok, codec.OpenAtClient(client, SealFromServer(codec, session!, s_payload), out _, out _));
        session.Dispose();
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AReplyToAnotherClientSession_IsRefused(string method)
    {
        var codec = Codec(method, out _);
        using var client = codec.NewClientSession();
        using var other = codec.NewClientSession();
        Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, SealFromClient(codec, client, s_payload), null, out var session, out _, out _));

        var back = SealFromServer(codec, session!, s_payload);

        Assert.Equal(Udp2022Status.InvalidHeader, codec.OpenAtClient(other, back, out _, out _));
        session!.Dispose();
    }

    [Theory]
    [InlineData(-31, false)]
    [InlineData(29, true)]
    [InlineData(31, false)]
    public void APacketMoreThanThirtySecondsOff_IsRefused(int senderAheadSeconds, bool accepted)
    {
        var expected = accepted ? Udp2022Status.Ok : Udp2022Status.StaleTimestamp;
        var cipher = Cipher("2022-blake3-aes-256-gcm");
        var psk = RandomNumberGenerator.GetBytes(cipher.KeySize);
        var senderTime = new ManualTimeProvider();
        var receiverTime = new ManualTimeProvider();
        senderTime.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(senderAheadSeconds));
        receiverTime.Advance(TimeSpan.FromHours(1));
        var sender = new Udp2022Codec(cipher, psk, senderTime);
        var receiver = new Udp2022Codec(cipher, psk, receiverTime);
        using var client = sender.NewClientSession();

        Assert.Equal(expected, OpenAtServer(receiver, SealFromClient(sender, client, s_payload), null, out var session, out _, out _));
        Assert.Equal(expected == Udp2022Status.Ok, session is not null);
        session?.Dispose();
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AnotherKeyOrAnyFlippedBit_FailsAuthentication_AndMakesNoSession(string method)
    {
        var codec = Codec(method, out var cipher);
        var stranger = new Udp2022Codec(cipher, RandomNumberGenerator.GetBytes(cipher.KeySize), TimeProvider.System);
        using var client = stranger.NewClientSession();
        Assert.Equal(Udp2022Status.AuthenticationFailed, OpenAtServer(codec, SealFromClient(stranger, client, s_payload), null, out var none, out _, out _));
        Assert.Null(none);

        using var ours = codec.NewClientSession();
        var good = SealFromClient(codec, ours, s_payload);
        for (var i = 0; i < good.Length; i++)
        {
            var tampered = Copy(good);
            tampered[i] ^= (byte)(1 << (i % 8));
            var status = OpenAtServer(codec, tampered, null, out var session, out _, out _);
            Assert.True(status is Udp2022Status.AuthenticationFailed, $"byte {i}: {status}");
            Assert.Null(session);
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void ARestartedClient_OnTheSameAddress_StartsANewServerSession(string method)
    {
        var codec = Codec(method, out _);
        using var first = codec.NewClientSession();
        using var second = codec.NewClientSession();
        Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, SealFromClient(codec, first, s_payload), null, out var known, out _, out _));

        Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, SealFromClient(codec, second, s_payload), known, out var next, out _, out _));

        Assert.NotSame(known, next);
        Assert.Equal(second.SessionId, next!.ClientSessionId);
        Assert.NotEqual(known!.ServerSessionId, next.ServerSessionId);
        known.Dispose();
        next.Dispose();
    }

    [Fact]
    public void AThirdServerSession_IsRefusedWhileTheOldOneSpoke_WithinAMinute()
    {
        var cipher = Cipher("2022-blake3-aes-128-gcm");
        var psk = RandomNumberGenerator.GetBytes(cipher.KeySize);
        var time = new ManualTimeProvider();
        var codec = new Udp2022Codec(cipher, psk, time);
        using var client = codec.NewClientSession();
        var servers = new List<Udp2022ServerSession>();
        for (var i = 0; i < 3; i++)
        {
            // A server that forgot the session (restarted) answers from a new server session each time.
            Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, SealFromClient(codec, client, s_payload), null, out var session, out _, out _));
            servers.Add(session!);
        }

        Assert.Equal(Udp2022Status.Ok, codec.OpenAtClient(client, SealFromServer(codec, servers[0], s_payload), out _, out _));
        Assert.Equal(Udp2022Status.Ok, codec.OpenAtClient(client, SealFromServer(codec, servers[1], s_payload), out _, out _));
        Assert.Equal(Udp2022Status.Replayed, codec.OpenAtClient(client, SealFromServer(codec, servers[2], s_payload), out _, out _));

        time.Advance(TimeSpan.FromSeconds(20)); // stays within the timestamp window
        Assert.Equal(Udp2022Status.Ok, codec.OpenAtClient(client, SealFromServer(codec, servers[1], s_payload), out _, out _));
        time.Advance(TimeSpan.FromSeconds(41)); // the old one (servers[0]) last spoke 61 s ago
        Assert.Equal(Udp2022Status.Ok, codec.OpenAtClient(client, SealFromServer(codec, servers[2], s_payload), out _, out _));
        servers.ForEach(s => s.Dispose());
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AnEndedSession_SealsNothing_AndOpensNothing(string method)
    {
        var codec = Codec(method, out _);
        var client = codec.NewClientSession();
        var packet = SealFromClient(codec, client, s_payload);
        var later = SealFromClient(codec, client, s_payload);
        Assert.Equal(Udp2022Status.Ok, OpenAtServer(codec, packet, null, out var session, out _, out _));
        var reply = SealFromServer(codec, session!, s_payload);

        client.Dispose();
        session!.Dispose();

        var buffer = new byte[1000];
        s_payload.CopyTo(buffer, codec.PrefixSize(fromServer: false));
        Assert.Equal(0, codec.SealFromClient(client, buffer, s_payload.Length));
        Assert.Equal(0, codec.SealFromServer(session, buffer, s_payload.Length));
        Assert.Equal(Udp2022Status.SessionEnded, codec.OpenAtClient(client, reply, out _, out _));
        Assert.Equal(Udp2022Status.SessionEnded, OpenAtServer(codec, later, session, out _, out _, out _));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void ShortOrEmptyPackets_AreRefused_NeverThrow(string method)
    {
        var codec = Codec(method, out _);
        using var client = codec.NewClientSession();
        for (var length = 0; length < codec.PrefixSize(fromServer: true) + Udp2022Codec.TagSize + 2; length++)
        {
            var noise = RandomNumberGenerator.GetBytes(length);
            Assert.NotEqual(Udp2022Status.Ok, OpenAtServer(codec, Copy(noise), null, out _, out _, out _));
            Assert.NotEqual(Udp2022Status.Ok, codec.OpenAtClient(client, Copy(noise), out _, out _));
        }
    }

    private static Udp2022Codec Codec(string method, out CipherInfo cipher)
    {
        cipher = Cipher(method);
        return new Udp2022Codec(cipher, RandomNumberGenerator.GetBytes(cipher.KeySize), TimeProvider.System);
    }

    private static CipherInfo Cipher(string method)
    {
        Assert.True(CipherCatalog.TryGet(method, out var cipher));
        return cipher;
    }

    private static byte[] Header()
    {
        var address = ShadowsocksAddress.FromIp(IPAddress.Parse("192.0.2.7"), 53);
        var header = new byte[AddressHeader.GetSize(address)];
        AddressHeader.Write(address, header);
        return header;
    }

    /// <summary>The server side as the relay runs it: <paramref name="known"/> is the one live session, if any.</summary>
    private static Udp2022Status OpenAtServer(Udp2022Codec codec, byte[] packet, Udp2022ServerSession? known, out Udp2022ServerSession? session, out int offset, out int length) =>
        codec.OpenAtServer(packet, id => known is not null && known.ClientSessionId == id ? known : null, out session, out offset, out length);

    private static byte[] Copy(byte[] bytes) => (byte[])bytes.Clone();

    private static byte[] SealFromClient(Udp2022Codec codec, Udp2022ClientSession session, byte[] payload)
    {
        var prefix = codec.PrefixSize(fromServer: false);
        var buffer = new byte[prefix + payload.Length + Udp2022Codec.TagSize];
        payload.CopyTo(buffer, prefix);
        var length = codec.SealFromClient(session, buffer, payload.Length);
        Assert.Equal(buffer.Length, length);
        return buffer;
    }

    private static byte[] SealFromServer(Udp2022Codec codec, Udp2022ServerSession session, byte[] payload)
    {
        var prefix = codec.PrefixSize(fromServer: true);
        var buffer = new byte[prefix + payload.Length + Udp2022Codec.TagSize];
        payload.CopyTo(buffer, prefix);
        var length = codec.SealFromServer(session, buffer, payload.Length);
        Assert.Equal(buffer.Length, length);
        return buffer;
    }
}
