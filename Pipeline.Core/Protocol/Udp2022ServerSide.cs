using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>One server session as a 2022 UDP client sees it: its ID, AEAD (AES methods), replay window and when it last spoke.</summary>
internal sealed class Udp2022ServerSide(ulong id, IAeadCipher? aead)
{
    public ulong Id { get; } = id;

    public IAeadCipher? Aead { get; } = aead;

    public PacketIdWindow Packets { get; } = new();

    public DateTimeOffset LastHeard { get; set; }
}
