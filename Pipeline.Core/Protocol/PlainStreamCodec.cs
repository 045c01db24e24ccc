namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// The bytes as they are, both ways: the local's direct connections (an ACL bypasses the server for them) run through
/// the same data stages as the Shadowsocks stream, with this in place of the cipher. Stateless, so one serves all.
/// </summary>
internal sealed class PlainStreamCodec : IStreamEncryptor, IStreamDecryptor
{
    public static PlainStreamCodec Instance { get; } = new();

    private PlainStreamCodec()
    {
    }

    public int MaxOutputSize(int length) => length;

    public int Encrypt(ReadOnlySpan<byte> plaintext, Span<byte> output)
    {
        plaintext.CopyTo(output);
        return plaintext.Length;
    }

    public DecryptStatus Decrypt(ReadOnlySpan<byte> ciphertext, Span<byte> output, out int written)
    {
        ciphertext.CopyTo(output);
        written = ciphertext.Length;
        return DecryptStatus.Ok;
    }

    public void Dispose()
    {
        // Nothing held.
    }
}
