using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>One user of a multi-user 2022 server (SIP023): its name (logs, traces) and key (uPSK).</summary>
internal sealed class ServerUser(string name, byte[] key)
{
    public string Name { get; } = name;

    /// <summary>The user's key: the PSK of everything after the identity header, and of every answer.</summary>
    public byte[] Key { get; } = key;

    /// <summary>UDP: seals the separate headers of the replies to this user's sessions, under the user's key.</summary>
    public AesEcb HeaderCipher { get; } = new(key);
}
