using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>One user of a multi-user 2022 server (SIP023): its name (logs, traces) and key (uPSK).</summary>
internal sealed class ServerUser(string name, byte[] key, UInt128 hash)
{
    public string Name { get; } = name;

    /// <summary>The user's key: the PSK of everything after the identity header, and of every answer.</summary>
    public byte[] Key { get; } = key;

    /// <summary>The first 16 bytes of the key's BLAKE3 hash, as a number: what identity headers name it by.</summary>
    public UInt128 Hash { get; } = hash;

    /// <summary>UDP: seals the separate headers of the replies to this user's sessions, under the user's key.</summary>
    public AesEcb HeaderCipher { get; } = new(key);
}
