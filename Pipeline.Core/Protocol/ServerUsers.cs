using System.Buffers.Binary;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Core.Protocol;

/// <summary>
/// SIP023, a server's side: its identity key (iPSK) and its users, found by the 16-byte BLAKE3 hash of their key that
/// a request's identity header carries (layout in <see cref="IdentityChain"/>). Thread-safe. The users can be replaced
/// while the server runs (<see cref="Replace"/>, on SIGHUP): a look-up sees the old list or the new one, whole; the
/// identity key stays. A user found just before a replacement is checked again with <see cref="Serves"/> once the
/// connection or session is marked with it (the reload ends those it finds marked).
/// </summary>
internal sealed class ServerUsers
{
    private readonly CipherInfo _cipher;
    private readonly byte[] _identityKey;
    private readonly AesEcb _identityCipher;
    private readonly Lock _replacing = new();
    private Dictionary<UInt128, ServerUser> _byHash; // replaced whole (Interlocked), never changed in place

    public ServerUsers(CipherInfo cipher, byte[] identityKey, IReadOnlyList<UserKey> users)
    {
        if (!cipher.HasIdentityHeaders)
        {
            throw new ArgumentException($"{cipher.Name} has no identity headers (SIP023: the 2022 AES methods only).", nameof(cipher));
        }

        if (identityKey.Length != cipher.KeySize)
        {
            throw new ArgumentException($"Every key of {cipher.Name} has {cipher.KeySize} bytes.", nameof(identityKey));
        }

        _cipher = cipher;
        _identityKey = identityKey;
        _identityCipher = new AesEcb(identityKey);
        _byHash = Table(users, []);
    }

    /// <summary>The users' names, in no particular order.</summary>
    public IReadOnlyCollection<string> Names => [.. _byHash.Values.Select(static u => u.Name)];

    /// <summary>
    /// Puts <paramref name="users"/> in place of the users now served: requests from now on are looked up among them.
    /// A user kept with the same name and key keeps its <see cref="ServerUser"/> (and the key schedules it has made).
    /// Returns the users no longer served (gone, renamed or given another key). Throws, changing nothing, on a list the
    /// constructor would refuse.
    /// </summary>
    public IReadOnlyList<ServerUser> Replace(IReadOnlyList<UserKey> users)
    {
        lock (_replacing)
        {
            var before = _byHash;
            var after = Table(users, before);
            Interlocked.Exchange(ref _byHash, after); // a full fence: the reload's look for marked connections comes after it
            return [.. before.Where(entry => !after.TryGetValue(entry.Key, out var kept) || !ReferenceEquals(kept, entry.Value)).Select(static entry => entry.Value)];
        }
    }

    /// <summary>
    /// Whether <paramref name="user"/> (found by a look-up) is still served: the list in place now has it. Called once a
    /// connection or session carries the user, after a full fence, so that a reload either finds it marked or is seen
    /// here.
    /// </summary>
    public bool Serves(ServerUser user) =>
        _byHash.TryGetValue(user.Hash, out var current) && ReferenceEquals(current, user);

    private Dictionary<UInt128, ServerUser> Table(IReadOnlyList<UserKey> users, Dictionary<UInt128, ServerUser> current)
    {
        if (users.Any(u => u.Key.Length != _cipher.KeySize))
        {
            throw new ArgumentException($"Every key of {_cipher.Name} has {_cipher.KeySize} bytes.", nameof(users));
        }

        var table = new Dictionary<UInt128, ServerUser>(users.Count);
        foreach (var (name, key) in users)
        {
            var hash = Name(KeyDerivation.Blake3KeyHash(key));
            var user = current.TryGetValue(hash, out var same) && same.Name == name ? same : new ServerUser(name, key, hash);
            if (!table.TryAdd(hash, user))
            {
                throw new ArgumentException($"Users {table[hash].Name} and {name} have the same key.", nameof(users));
            }
        }

        return table;
    }

    /// <summary>The table of <see cref="RelayOptions.Users"/>, under <see cref="RelayOptions.MasterKey"/>, or null without users.</summary>
    public static ServerUsers? For(RelayOptions options) =>
        options.Users.Count == 0 ? null : new ServerUsers(options.Cipher, options.MasterKey, options.Users);

    /// <summary>The user a TCP request's identity header names under <paramref name="salt"/>, or null (not one of ours: a probe, or a wrong key).</summary>
    public ServerUser? FindTcp(ReadOnlySpan<byte> salt, ReadOnlySpan<byte> identityHeader)
    {
        Span<byte> subkey = stackalloc byte[_identityKey.Length];
        Span<byte> hash = stackalloc byte[AesBlock.Size];
        KeyDerivation.Blake3IdentitySubkey(_identityKey, salt, subkey);
        AesBlock.Decrypt(subkey, identityHeader, hash);
        CryptographicOperations.ZeroMemory(subkey);
        return _byHash.GetValueOrDefault(Name(hash));
    }

    /// <summary>The user a UDP request's identity header names, given the plaintext of its <paramref name="separateHeader"/>, or null.</summary>
    public ServerUser? FindUdp(ReadOnlySpan<byte> separateHeader, ReadOnlySpan<byte> identityHeader)
    {
        Span<byte> hash = stackalloc byte[AesBlock.Size];
        _identityCipher.Decrypt(identityHeader, hash);
        return _byHash.GetValueOrDefault(Name(hash) ^ Name(separateHeader)); // the hash was sealed XORed with the separate header
    }

    private static UInt128 Name(ReadOnlySpan<byte> hash) => BinaryPrimitives.ReadUInt128LittleEndian(hash);
}
