using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>What the stream codec tests share: an address header, random bytes, and encrypting and decrypting whole or in pieces.</summary>
internal static class StreamCodecKit
{
    public static byte[] Header(ShadowsocksAddress address)
    {
        var header = new byte[AddressHeader.GetSize(address)];
        AddressHeader.Write(address, header);
        return header;
    }

    public static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    public static byte[] Encrypt(IStreamEncryptor encryptor, byte[] plaintext)
    {
        var output = new byte[encryptor.MaxOutputSize(plaintext.Length)];
        return output[..encryptor.Encrypt(plaintext, output)];
    }

    /// <summary>Decrypts <paramref name="wire"/> fed in random pieces; stops at the first failure, with the plaintext so far.</summary>
    public static (DecryptStatus Status, byte[] Plain) DecryptInPieces(IStreamDecryptor decryptor, byte[] wire, Random random)
    {
        var plain = new List<byte>();
        var offset = 0;
        while (offset < wire.Length)
        {
            var n = Math.Min(wire.Length - offset, random.Next(1, 40_000));
            var output = new byte[decryptor.MaxOutputSize(n)];
            var status = decryptor.Decrypt(wire.AsSpan(offset, n), output, out var written);
            plain.AddRange(output.AsSpan(0, written).ToArray());
            if (status != DecryptStatus.Ok)
            {
                return (status, [.. plain]);
            }

            offset += n;
        }

        return (DecryptStatus.Ok, [.. plain]);
    }
}
