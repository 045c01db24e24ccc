using System.Security.Cryptography;
using Shadowsocks.Pipeline.Bench.Timing;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Bench.Identity;

/// <summary>
/// What a SIP023 identity header costs a connection (TCP) or a datagram (UDP): the client writing it, the server
/// finding the user among 1,000, and for scale the session subkey every 2022 TCP connection derives anyway. Microseconds and bytes allocated per
/// operation, one thread, after a warm-up.
/// <c>dotnet run -c Release --project bench/Pipeline.Bench -- eih [seconds per figure]</c>.
/// </summary>
internal static class IdentityHeaderCost
{
    public static void Run(string[] args)
    {
        var seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1;
        foreach (var name in new[] { "2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm" })
        {
            CipherCatalog.TryGet(name, out var cipher);
            var identity = RandomNumberGenerator.GetBytes(cipher.KeySize);
            var users = Enumerable.Range(0, 1000).Select(i => new UserKey($"user{i}", RandomNumberGenerator.GetBytes(cipher.KeySize))).ToArray();
            var table = new ServerUsers(cipher, identity, users);
            var chain = new IdentityChain(cipher, [identity], users[^1].Key);
            var salt = RandomNumberGenerator.GetBytes(cipher.SaltSize);
            var header = new byte[chain.Size];
            var subkey = new byte[cipher.KeySize];
            chain.WriteTcp(salt, header);
            Report($"{name}: client writes the TCP identity header", seconds, () => chain.WriteTcp(salt, header));
            Report($"{name}: server finds the user (1,000 users)", seconds, () => table.FindTcp(salt, header));
            Report($"{name}: the session subkey (every connection)", seconds, () => KeyDerivation.Blake3SessionSubkey(users[0].Key, salt, subkey));

            var separateHeader = RandomNumberGenerator.GetBytes(16);
            var udpHeader = new byte[chain.Size];
            chain.WriteUdp(separateHeader, udpHeader);
            Report($"{name}: client writes a UDP packet's identity header", seconds, () => chain.WriteUdp(separateHeader, udpHeader));
            Report($"{name}: server finds a UDP packet's user (1,000 users)", seconds, () => table.FindUdp(separateHeader, udpHeader));

            // The separate header's block cipher, as the codec had it (.NET's Aes) and has it (AesEcb).
            using var dotnet = System.Security.Cryptography.Aes.Create();
            dotnet.Key = identity;
            var ecb = new AesEcb(identity);
            var block = new byte[16];
            Report($"{name}: one block, .NET Aes.EncryptEcb", seconds, () => dotnet.EncryptEcb(separateHeader, block, System.Security.Cryptography.PaddingMode.None));
            Report($"{name}: one block, AesEcb (BouncyCastle)", seconds, () => ecb.Encrypt(separateHeader, block));
        }
    }

    private static void Report(string label, double seconds, Action operation)
    {
        var (microseconds, bytes) = PerOperation.Measure(seconds, operation);
        Console.WriteLine($"{label,-64}{microseconds,8:F2} µs {bytes,8:F0} B");
    }
}
