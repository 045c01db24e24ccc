using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// A server's side of one SIP022 UDP session: the client's session ID, its AEAD (AES methods) and replay window, and
/// the server's own session ID, packet counter and AEAD for the replies. Thread-safe: every use holds <see cref="Gate"/>.
/// </summary>
internal sealed class Udp2022ServerSession : IDisposable
{
    internal Udp2022ServerSession(ulong clientSessionId, IAeadCipher? clientAead, ulong serverSessionId, ServerUser? user = null)
    {
        ClientSessionId = clientSessionId;
        ClientAead = clientAead;
        ServerSessionId = serverSessionId;
        User = user;
    }

    public ulong ClientSessionId { get; }

    public ulong ServerSessionId { get; }

    /// <summary>A multi-user server's session (SIP023): the user whose key it runs under; null on a one-key server.</summary>
    public ServerUser? User { get; }

    internal object Gate { get; } = new();

    internal IAeadCipher? ClientAead { get; }

    /// <summary>The replies' AEAD (AES methods), made once the session's first packet authenticated.</summary>
    internal IAeadCipher? ServerAead { get; set; }

    internal PacketIdWindow ClientPackets { get; } = new();

    internal ulong NextPacketId { get; set; }

    /// <summary>The address the client was last heard from: where replies go (SIP022 § 3.2.4), whichever NAT entry they come back on.</summary>
    public System.Net.IPEndPoint? LastHeardFrom { get; set; }

    /// <summary>Set by <see cref="Dispose"/>: a stage still holding the session drops its datagram instead of using it.</summary>
    internal bool Ended { get; private set; }

    public void Dispose()
    {
        lock (Gate)
        {
            Ended = true;
            ClientAead?.Dispose();
            ServerAead?.Dispose();
        }
    }
}
