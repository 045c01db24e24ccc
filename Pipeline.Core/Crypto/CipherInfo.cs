namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>One row of the cipher catalog: a method name and what it takes to use it.</summary>
/// <param name="Name">The method name as users write it (lower case).</param>
/// <param name="Family">AEAD or stream framing.</param>
/// <param name="KeySize">Master key length in bytes; 0 means the password bytes are the key (table, none).</param>
/// <param name="SaltSize">AEAD salt length, or stream IV length, in bytes (0 for table and none).</param>
internal sealed class CipherInfo(
    string name,
    CipherFamily family,
    int keySize,
    int saltSize,
    Func<ReadOnlyMemory<byte>, IAeadCipher>? aeadFactory,
    Func<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>, bool, IStreamCipher>? streamFactory)
{
    public string Name { get; } = name;

    public CipherFamily Family { get; } = family;

    public int KeySize { get; } = keySize;

    public int SaltSize { get; } = saltSize;

    /// <summary>AEAD tag length; 0 for stream ciphers.</summary>
    public int TagSize => Family == CipherFamily.Stream ? 0 : 16;

    /// <summary>A Shadowsocks 2022 method: the key is a base64 PSK of exactly <see cref="KeySize"/> bytes, never a password.</summary>
    public bool Is2022 => Family == CipherFamily.Aead2022;

    /// <summary>SIP023: the 2022 AES methods carry identity headers (multi-user servers); the ChaCha20 one does not.</summary>
    public bool HasIdentityHeaders => Is2022 && Name != "2022-blake3-chacha20-poly1305";

    /// <summary>Creates the AEAD for a session subkey (AEAD family only).</summary>
    public IAeadCipher CreateAead(ReadOnlySpan<byte> subkey) =>
        (aeadFactory ?? throw new InvalidOperationException($"{Name} is not an AEAD method."))(subkey.ToArray());

    /// <summary>Creates one direction's keystream from the master key and that direction's IV (stream family only).</summary>
    public IStreamCipher CreateStream(ReadOnlySpan<byte> key, ReadOnlySpan<byte> iv, bool encrypt) =>
        (streamFactory ?? throw new InvalidOperationException($"{Name} is not a stream method."))(key.ToArray(), iv.ToArray(), encrypt);

    public override string ToString() => Name;
}
