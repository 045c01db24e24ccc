using System.Buffers.Binary;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// SIP023, a client's side: the identity headers its requests carry, one per identity key (iPSK) on the way, each
/// naming the next key (the next hop's iPSK, or last the user's key, uPSK) by the first 16 bytes of its BLAKE3 hash.
/// <code>
/// TCP, after the salt:              AES-ECB_k(hash16(next))        k = BLAKE3 derive_key("shadowsocks 2022 identity subkey", iPSK || salt)
/// UDP, after the separate header:   AES-ECB_iPSK(hash16(next) XOR separate header plaintext)
/// </code>
/// The user's key then does everything SIP022 gives the PSK to do; a UDP request's separate header is sealed with
/// the first iPSK instead (the server's answers are plain SIP022 under the user's key). Immutable; thread-safe.
/// </summary>
internal sealed class IdentityChain
{
    private readonly byte[][] _identityKeys;
    private readonly byte[][] _nextHashes;

    /// <summary>UDP: a cipher under each identity key; the first also seals the separate header.</summary>
    private readonly AesEcb[] _udpCiphers;

    public IdentityChain(CipherInfo cipher, IReadOnlyList<byte[]> identityKeys, byte[] userKey)
    {
        if (!cipher.HasIdentityHeaders)
        {
            throw new ArgumentException($"{cipher.Name} has no identity headers (SIP023: the 2022 AES methods only).", nameof(cipher));
        }

        if (identityKeys.Count is 0 or > KeyDerivation.MaxIdentityKeys || identityKeys.Any(k => k.Length != cipher.KeySize) || userKey.Length != cipher.KeySize)
        {
            throw new ArgumentException(
                $"Every key of {cipher.Name} has {cipher.KeySize} bytes, and a chain has 1 to {KeyDerivation.MaxIdentityKeys} identity keys.", nameof(identityKeys));
        }

        _identityKeys = [.. identityKeys];
        _nextHashes = [.. identityKeys.Skip(1).Append(userKey).Select(k => KeyDerivation.Blake3KeyHash(k))];
        _udpCiphers = [.. identityKeys.Select(k => new AesEcb(k))];
    }

    /// <summary>The chain of <see cref="RelayOptions.IdentityKeys"/> before <see cref="RelayOptions.MasterKey"/>, or null without any.</summary>
    public static IdentityChain? For(RelayOptions options) =>
        options.IdentityKeys.Count == 0 ? null : new IdentityChain(options.Cipher, options.IdentityKeys, options.MasterKey);

    /// <summary>The identity headers' bytes in a request.</summary>
    public int Size => AesBlock.Size * _identityKeys.Length;

    /// <summary>Seals a UDP request's separate header, with the first hop's identity key (SIP023: not the user's).</summary>
    public void SealSeparateHeader(ReadOnlySpan<byte> separateHeader, Span<byte> destination) => _udpCiphers[0].Encrypt(separateHeader, destination);

    /// <summary>A TCP request's identity headers for <paramref name="salt"/>, written to <c>destination[..Size]</c>.</summary>
    public void WriteTcp(ReadOnlySpan<byte> salt, Span<byte> destination)
    {
        Span<byte> subkey = stackalloc byte[_identityKeys[0].Length];
        for (var i = 0; i < _identityKeys.Length; i++)
        {
            KeyDerivation.Blake3IdentitySubkey(_identityKeys[i], salt, subkey);
            AesBlock.Encrypt(subkey, _nextHashes[i], destination.Slice(i * AesBlock.Size, AesBlock.Size));
        }

        CryptographicOperations.ZeroMemory(subkey);
    }

    /// <summary>A UDP request's identity headers for the plaintext <paramref name="separateHeader"/>, written to <c>destination[..Size]</c>.</summary>
    public void WriteUdp(ReadOnlySpan<byte> separateHeader, Span<byte> destination)
    {
        Span<byte> plain = stackalloc byte[AesBlock.Size];
        var header = BinaryPrimitives.ReadUInt128LittleEndian(separateHeader);
        for (var i = 0; i < _identityKeys.Length; i++)
        {
            BinaryPrimitives.WriteUInt128LittleEndian(plain, BinaryPrimitives.ReadUInt128LittleEndian(_nextHashes[i]) ^ header);
            _udpCiphers[i].Encrypt(plain, destination.Slice(i * AesBlock.Size, AesBlock.Size));
        }
    }
}
