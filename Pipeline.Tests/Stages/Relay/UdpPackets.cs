using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>What a Shadowsocks UDP client puts on the wire to a server, and reads back from it.</summary>
internal static class UdpPackets
{
    /// <summary>A sealed packet: address header of <paramref name="target"/>, then <paramref name="payload"/>.</summary>
    public static byte[] Seal(RelayOptions options, ShadowsocksAddress target, ReadOnlySpan<byte> payload)
    {
        var plain = new byte[AddressHeader.GetSize(target) + payload.Length];
        payload.CopyTo(plain.AsSpan(AddressHeader.Write(target, plain)));
        var packet = new byte[UdpPacketCodec.MaxPacketSize(options.Cipher, plain.Length)];
        var length = UdpPacketCodec.Encrypt(options.Cipher, options.MasterKey, plain, packet);
        return packet[..length];
    }

    /// <summary>A server's reply opened: where the data came from, and the data (asserts that it authenticates and parses).</summary>
    public static (ShadowsocksAddress Source, byte[] Payload, byte AddressType) Open(RelayOptions options, ReadOnlySpan<byte> packet)
    {
        var plain = new byte[packet.Length];
        Assert.True(UdpPacketCodec.TryDecrypt(options.Cipher, options.MasterKey, packet, plain, out var length), "the reply did not authenticate");
        Assert.Equal(AddressParseStatus.Ok, AddressHeader.TryRead(plain.AsSpan(0, length), out var source, out var consumed));
        return (source, plain[consumed..length], plain[0]);
    }
}
