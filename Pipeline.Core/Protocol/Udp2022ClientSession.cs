using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// A client's side of one SIP022 UDP session: its session ID, packet counter and AEAD (AES methods), and the server
/// sessions that answer it. SIP022 § 3.2.4: one current and one old server session are kept; a third is refused
/// while the old one was heard from within the last minute (so a replayed old session cannot come back). Thread-safe:
/// every use holds <see cref="Gate"/>.
/// </summary>
internal sealed class Udp2022ClientSession : IDisposable
{
    /// <summary>How long an old server session bars a new one.</summary>
    public static readonly TimeSpan OldSessionHold = TimeSpan.FromMinutes(1);

    internal Udp2022ClientSession(ulong sessionId, IAeadCipher? aead)
    {
        SessionId = sessionId;
        Aead = aead;
    }

    public ulong SessionId { get; }

    internal object Gate { get; } = new();

    internal IAeadCipher? Aead { get; }

    internal ulong NextPacketId { get; set; }

    internal Udp2022ServerSide? Current { get; set; }

    internal Udp2022ServerSide? Old { get; set; }

    /// <summary>Set by <see cref="Dispose"/>: a stage still holding the session drops its datagram instead of using it.</summary>
    internal bool Ended { get; private set; }

    public void Dispose()
    {
        lock (Gate)
        {
            Ended = true;
            Aead?.Dispose();
            Current?.Aead?.Dispose();
            Old?.Aead?.Dispose();
        }
    }

}
