using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// AES-GCM (128/192/256) on the platform's OpenSSL: 12-byte nonce, 16-byte tag. The OpenSSL context (expanded key and
/// GHASH tables, 1.7 KiB of native memory per key) is built on first use and can be given back while the connection
/// is quiet (<see cref="ReleaseKeySchedule"/>): an idle connection then keeps only the 16–32 key bytes.
/// </summary>
internal sealed class DotNetAesGcm(ReadOnlySpan<byte> key) : IAeadCipher
{
    private const int Tag = 16;
    private readonly byte[] _key = key.ToArray();
    private AesGcm? _aes;
    private bool _disposed;

    public int NonceSize => 12;

    public int TagSize => Tag;

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag) =>
        Aes().Encrypt(nonce, plaintext, ciphertext, tag);

    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        try
        {
            Aes().Decrypt(nonce, ciphertext, tag, plaintext);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }

    public void ReleaseKeySchedule()
    {
        _aes?.Dispose();
        _aes = null;
    }

    public void Dispose()
    {
        _disposed = true;
        ReleaseKeySchedule();
        CryptographicOperations.ZeroMemory(_key);
    }

    /// <summary>The context, built on first use; after <see cref="Dispose"/> (the key is zeroed) it is never rebuilt.</summary>
    private AesGcm Aes()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _aes ??= new AesGcm(_key, Tag);
    }
}
