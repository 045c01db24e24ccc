namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>The outcome of opening a SIP022 UDP packet; anything but <see cref="Ok"/> drops it.</summary>
internal enum Udp2022Status
{
    Ok,

    /// <summary>Shorter than the smallest packet.</summary>
    TooShort,

    /// <summary>The tag did not verify (wrong key, tampering, noise).</summary>
    AuthenticationFailed,

    /// <summary>Wrong type, another client's session ID in a reply, or padding past the end.</summary>
    InvalidHeader,

    /// <summary>A timestamp more than 30 s from this machine's clock.</summary>
    StaleTimestamp,

    /// <summary>The session ended (expired or replaced) while the packet was on its way.</summary>
    SessionEnded,

    /// <summary>A packet ID taken before or behind the window, or a third server session too soon.</summary>
    Replayed,
}
