using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>Creates the TCP stream encryptor and decryptor for a method: AEAD chunk framing or stream-cipher framing.</summary>
internal static class ShadowsocksStreamCodec
{
    /// <summary>An encryptor with a fresh random salt/IV, emitted before the first bytes.</summary>
    public static IStreamEncryptor CreateEncryptor(CipherInfo cipher, byte[] masterKey)
    {
        Span<byte> salt = stackalloc byte[cipher.SaltSize];
        SaltSource.Fill(salt);
        return CreateEncryptorWithSalt(cipher, masterKey, salt);
    }

    /// <summary>A decryptor that reads the peer's salt/IV from the stream itself.</summary>
    public static IStreamDecryptor CreateDecryptor(CipherInfo cipher, byte[] masterKey) =>
        cipher.Family == CipherFamily.Aead
            ? new AeadStreamDecryptor(cipher, masterKey)
            : new StreamCipherDecryptor(cipher, masterKey);

    /// <summary>
    /// An encryptor with a chosen salt/IV. For known-answer tests only: a real connection must use a fresh random
    /// salt (<see cref="CreateEncryptor"/>), since a repeated AEAD salt repeats the subkey and nonces.
    /// </summary>
    internal static IStreamEncryptor CreateEncryptorWithSalt(CipherInfo cipher, byte[] masterKey, ReadOnlySpan<byte> salt) =>
        cipher.Family == CipherFamily.Aead
            ? new AeadStreamEncryptor(cipher, masterKey, salt)
            : new StreamCipherEncryptor(cipher, masterKey, salt);
}
