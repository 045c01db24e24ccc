namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>The SIP004 nonce counter: starts at zero, incremented as a little-endian integer after every seal or open.</summary>
internal static class AeadNonce
{
    /// <summary>Adds one to <paramref name="nonce"/> read as a little-endian unsigned integer (wrapping at the top).</summary>
    public static void Increment(Span<byte> nonce)
    {
        for (var i = 0; i < nonce.Length; i++)
        {
            if (++nonce[i] != 0)
            {
                return;
            }
        }
    }
}
