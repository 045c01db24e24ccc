using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// HMAC-SHA1 (RFC 2104) and HKDF-SHA1 (RFC 5869) over OpenSSL's low-level SHA-1 functions (see <see cref="LibCrypto"/>
/// for why). Falls back to .NET's HKDF where the library is not there; both give the same bytes (tests).
/// </summary>
internal static unsafe class Sha1Hmac
{
    public const int Size = 20;
    private const int Block = 64;

    /// <summary>HKDF-SHA1: extract with <paramref name="salt"/>, expand with <paramref name="info"/> to fill <paramref name="output"/> (at most 255 × 20 bytes).</summary>
    public static void Hkdf(ReadOnlySpan<byte> inputKey, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> info, Span<byte> output)
    {
        if (!LibCrypto.IsAvailable || salt.Length > Block || info.Length > 200 || output.Length > 255 * Size)
        {
            HKDF.DeriveKey(HashAlgorithmName.SHA1, inputKey, output, salt, info);
            return;
        }

        Span<byte> prk = stackalloc byte[Size];
        Compute(salt, inputKey, prk); // an empty salt is a block of zeros, which is what padding gives it

        // T(i) = HMAC(PRK, T(i-1) | info | i); the output is T(1) | T(2) | ...
        Span<byte> message = stackalloc byte[Size + info.Length + 1];
        Span<byte> t = stackalloc byte[Size];
        var previous = 0;
        for (var i = 1; output.Length > 0; i++)
        {
            t[..previous].CopyTo(message);
            info.CopyTo(message[previous..]);
            message[previous + info.Length] = (byte)i;
            Compute(prk, message[..(previous + info.Length + 1)], t);
            var take = Math.Min(Size, output.Length);
            t[..take].CopyTo(output);
            output = output[take..];
            previous = Size;
        }

        CryptographicOperations.ZeroMemory(prk);
        CryptographicOperations.ZeroMemory(t);
        CryptographicOperations.ZeroMemory(message);
    }

    /// <summary>HMAC-SHA1 of <paramref name="message"/> under <paramref name="key"/> (at most one block: 64 bytes).</summary>
    private static void Compute(ReadOnlySpan<byte> key, ReadOnlySpan<byte> message, Span<byte> mac)
    {
        var context = stackalloc byte[LibCrypto.Sha1ContextSize];
        var pad = stackalloc byte[Block];
        var inner = stackalloc byte[Size];
        Pad(key, pad, 0x36);
        LibCrypto.SHA1_Init(context);
        LibCrypto.SHA1_Update(context, pad, Block);
        fixed (byte* data = message)
        {
            LibCrypto.SHA1_Update(context, data, (nuint)message.Length);
        }

        LibCrypto.SHA1_Final(inner, context);
        Pad(key, pad, 0x5c);
        LibCrypto.SHA1_Init(context);
        LibCrypto.SHA1_Update(context, pad, Block);
        LibCrypto.SHA1_Update(context, inner, Size);
        fixed (byte* output = mac)
        {
            LibCrypto.SHA1_Final(output, context);
        }

        new Span<byte>(pad, Block).Clear();
        new Span<byte>(inner, Size).Clear();
        new Span<byte>(context, LibCrypto.Sha1ContextSize).Clear();
    }

    private static void Pad(ReadOnlySpan<byte> key, byte* pad, byte value)
    {
        var span = new Span<byte>(pad, Block);
        span.Fill(value);
        for (var i = 0; i < key.Length; i++)
        {
            span[i] ^= key[i];
        }
    }
}
