using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// Creates the TCP stream encryptor and decryptor for a method: AEAD chunk framing, 2022 framing or stream-cipher
/// framing. A 2022 stream knows its direction: a response is made with the other direction's codec (the server's
/// encryptor names the request's salt; the client's decryptor checks it), a request without.
/// </summary>
internal static class ShadowsocksStreamCodec
{
    /// <summary>
    /// An encryptor with a fresh random salt/IV, emitted before the first bytes. <paramref name="answering"/> is the
    /// decryptor of the request this stream answers (a server's; 2022 needs it, and a 2022 answer is sealed with the key
    /// its request was: a multi-user server's user's), null for a client's request stream, which carries
    /// <paramref name="identities"/>' headers when given (SIP023; <paramref name="masterKey"/> is then the user's key).
    /// A server gives its replay filter as <paramref name="remember"/>: the salt goes into it, so the answer sent back to
    /// the server as a request (a reflection, which SIP004's one key both ways would read) is refused as a replay, as
    /// ss-libev's own salts go into its Bloom filter.
    /// </summary>
    public static IStreamEncryptor CreateEncryptor(
        CipherInfo cipher, byte[] masterKey, IStreamDecryptor? answering = null, TimeProvider? time = null, IdentityChain? identities = null,
        ISaltFilter? remember = null)
    {
        Span<byte> salt = stackalloc byte[cipher.SaltSize];
        SaltSource.Fill(salt);
        if (salt.Length > 0)
        {
            _ = remember?.TryAdd(salt); // false only for a filter's false positive: the salt is refused either way
        }

        return CreateEncryptorWithSalt(cipher, masterKey, salt, answering, time, identities);
    }

    /// <summary>
    /// A decryptor that reads the peer's salt/IV from the stream itself. <paramref name="request"/> is the encryptor of
    /// the request this stream answers (a client's; 2022 needs it), null for a server's request stream (whose salt the
    /// read-header stage checks against the server's store). A multi-user server's request stream is read with its <paramref name="users"/>
    /// (SIP023; <paramref name="masterKey"/> is then its identity key).
    /// </summary>
    public static IStreamDecryptor CreateDecryptor(
        CipherInfo cipher, byte[] masterKey, IStreamEncryptor? request = null, TimeProvider? time = null, ServerUsers? users = null) =>
        cipher.Family switch
        {
            CipherFamily.Aead => new AeadStreamDecryptor(cipher, masterKey),
            CipherFamily.Aead2022 => new Aead2022StreamDecryptor(cipher, masterKey, Request(request), time ?? TimeProvider.System, users),
            _ => new StreamCipherDecryptor(cipher, masterKey),
        };

    /// <summary>
    /// An encryptor with a chosen salt/IV. For known-answer tests only: a real connection must use a fresh random
    /// salt (<see cref="CreateEncryptor"/>), since a repeated AEAD salt repeats the subkey and nonces.
    /// </summary>
    internal static IStreamEncryptor CreateEncryptorWithSalt(
        CipherInfo cipher, byte[] masterKey, ReadOnlySpan<byte> salt, IStreamDecryptor? answering = null, TimeProvider? time = null, IdentityChain? identities = null) =>
        cipher.Family switch
        {
            CipherFamily.Aead => new AeadStreamEncryptor(cipher, masterKey, salt),
            CipherFamily.Aead2022 when Answering(answering) is { } request => new Aead2022StreamEncryptor(cipher, request.Psk, salt, request, time ?? TimeProvider.System),
            CipherFamily.Aead2022 => new Aead2022StreamEncryptor(cipher, masterKey, salt, null, time ?? TimeProvider.System, identities),
            _ => new StreamCipherEncryptor(cipher, masterKey, salt),
        };

    private static Aead2022StreamEncryptor? Request(IStreamEncryptor? request) => request switch
    {
        null => null,
        Aead2022StreamEncryptor encryptor => encryptor,
        _ => throw new ArgumentException("A 2022 response is read against a 2022 request.", nameof(request)),
    };

    private static Aead2022StreamDecryptor? Answering(IStreamDecryptor? answering) => answering switch
    {
        null => null,
        Aead2022StreamDecryptor decryptor => decryptor,
        _ => throw new ArgumentException("A 2022 response answers a 2022 request.", nameof(answering)),
    };
}
