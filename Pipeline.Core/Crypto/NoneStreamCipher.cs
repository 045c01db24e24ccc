namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>The <c>none</c>/<c>plain</c> method of shadowsocks-rust: the bytes pass unchanged (for testing and trusted links).</summary>
internal sealed class NoneStreamCipher : IStreamCipher
{
    public void Process(ReadOnlySpan<byte> input, Span<byte> output) => input.CopyTo(output);

    public void Dispose()
    {
    }
}
