using System.Runtime.InteropServices;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>An OpenSSL <c>EVP_CIPHER_CTX</c>, freed when released (or finalized with the thread that kept it).</summary>
internal sealed class EvpCipherContext : SafeHandle
{
    public EvpCipherContext()
        : base(IntPtr.Zero, ownsHandle: true) => SetHandle(LibCrypto.EVP_CIPHER_CTX_new());

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The cipher it was last set up for, so a thread's context is set up once per cipher.</summary>
    public nint Cipher { get; set; }

    protected override bool ReleaseHandle()
    {
        LibCrypto.EVP_CIPHER_CTX_free(handle);
        return true;
    }
}
