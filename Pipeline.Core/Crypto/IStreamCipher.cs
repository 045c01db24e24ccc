namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// A stateful keystream for one direction of one connection. Input may be split at any byte:
/// processing "ab" then "c" gives the same output as processing "abc". Input and output may be the same memory.
/// </summary>
internal interface IStreamCipher : IDisposable
{
    void Process(ReadOnlySpan<byte> input, Span<byte> output);
}
