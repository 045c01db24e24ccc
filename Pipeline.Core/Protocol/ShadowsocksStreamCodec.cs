using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>Creates the TCP stream encryptor and decryptor for a method: AEAD chunk framing or stream-cipher framing.</summary>
internal static class ShadowsocksStreamCodec
{
    /// <summary>An encryptor with a fresh random salt/IV, emitted before the first bytes.</summary>
    public static IStreamEncryptor CreateEncryptor(CipherInfo cipher, byte[] masterKey) =>
        throw new NotImplementedException();

    /// <summary>A decryptor that reads the peer's salt/IV from the stream itself.</summary>
    public static IStreamDecryptor CreateDecryptor(CipherInfo cipher, byte[] masterKey) =>
        throw new NotImplementedException();
}
