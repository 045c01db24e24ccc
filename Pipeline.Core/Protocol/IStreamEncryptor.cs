namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// Encrypts one direction of a Shadowsocks TCP stream (AEAD chunks or stream-cipher keystream).
/// The first call also emits the salt or IV. Not thread-safe: one per direction, used in order.
/// </summary>
internal interface IStreamEncryptor : IDisposable
{
    /// <summary>The most bytes <see cref="Encrypt"/> may write for <paramref name="plaintextLength"/> bytes of input.</summary>
    int MaxOutputSize(int plaintextLength);

    /// <summary>Encrypts all of <paramref name="plaintext"/> into <paramref name="output"/>; returns the bytes written.</summary>
    int Encrypt(ReadOnlySpan<byte> plaintext, Span<byte> output);

    /// <summary>
    /// Called between bursts, when nothing is in flight: gives back what the cipher can rebuild from the session key
    /// (see <see cref="Crypto.IAeadCipher.ReleaseKeySchedule"/>). The stream state (nonce, keystream position) stays.
    /// By default nothing is given back (a stream cipher's state is its keystream position: nothing to rebuild).
    /// </summary>
    void ReleaseKeySchedule()
    {
    }
}
