namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>The outcome of feeding ciphertext to a TCP stream decryptor.</summary>
internal enum DecryptStatus
{
    /// <summary>All input was consumed; any whole chunks were written out.</summary>
    Ok,

    /// <summary>A tag did not verify (wrong key, tampering or a probe). The stream is dead.</summary>
    AuthenticationFailed,

    /// <summary>A chunk length had its reserved top bits set (over 0x3FFF). The stream is dead.</summary>
    InvalidChunkLength,

    /// <summary>A 2022 header is not what its place calls for: wrong type, bad lengths or padding, or a response naming another request's salt.</summary>
    InvalidHeader,

    /// <summary>A 2022 header's timestamp is more than 30 s from this machine's clock: treated as a replay.</summary>
    StaleTimestamp,
}
