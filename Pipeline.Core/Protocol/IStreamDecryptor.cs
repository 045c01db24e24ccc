namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// Decrypts one direction of a Shadowsocks TCP stream. Input may arrive split at any byte; the decryptor keeps
/// any partial salt, length or chunk internally and writes plaintext in order as soon as it is authenticated.
/// Not thread-safe: one per direction, used in order.
/// </summary>
internal interface IStreamDecryptor : IDisposable
{
    /// <summary>The most bytes <see cref="Decrypt"/> may write when given <paramref name="ciphertextLength"/> more bytes.</summary>
    int MaxOutputSize(int ciphertextLength);

    /// <summary>
    /// Consumes all of <paramref name="ciphertext"/>, writes the plaintext now available into <paramref name="output"/>
    /// and returns how many bytes it wrote in <paramref name="written"/>. After a failure status every later call fails too.
    /// </summary>
    DecryptStatus Decrypt(ReadOnlySpan<byte> ciphertext, Span<byte> output, out int written);

    /// <summary>
    /// Called between bursts, when nothing is in flight: gives back what the cipher can rebuild from the session key
    /// (see <see cref="Crypto.IAeadCipher.ReleaseKeySchedule"/>). The stream state (nonce, keystream position) stays.
    /// By default nothing is given back (a stream cipher's state is its keystream position: nothing to rebuild).
    /// </summary>
    void ReleaseKeySchedule()
    {
    }
}
