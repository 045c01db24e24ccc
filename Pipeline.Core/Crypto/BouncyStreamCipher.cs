namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>A BouncyCastle keystream (Salsa20, ChaCha20, RC4) behind this program's stream interface. Already streaming.</summary>
internal sealed class BouncyStreamCipher(Org.BouncyCastle.Crypto.IStreamCipher cipher) : IStreamCipher
{
    public void Process(ReadOnlySpan<byte> input, Span<byte> output) => cipher.ProcessBytes(input, output);

    public void Dispose()
    {
    }
}
