using System.Security.Cryptography;
using Shadowsocks.Pipeline.Bench.Timing;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Bench.Udp;

/// <summary>
/// What one UDP packet's cryptography costs, whole and in parts: encrypt and decrypt of a 64-byte and a
/// 1,400-byte payload (fresh salt, subkey and AEAD key per packet, as SIP004 requires), then each part as the codec
/// does it beside the plain .NET call it replaced: 32 random bytes, the HKDF-SHA1 subkey, and sealing 64 bytes under
/// a new key. Microseconds per operation, one thread, after a warm-up.
/// <c>dotnet run -c Release --project bench/Pipeline.Bench -- udp-crypto [seconds per figure]</c>.
/// </summary>
internal static class UdpPacketRate
{
    public static void Run(string[] args)
    {
        var seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1;
        foreach (var name in new[] { "aes-256-gcm", "chacha20-ietf-poly1305" })
        {
            CipherCatalog.TryGet(name, out var cipher);
            var key = new byte[cipher.KeySize];
            RandomNumberGenerator.Fill(key);
            foreach (var size in new[] { 64, 1400 })
            {
                var payload = new byte[size];
                var packet = new byte[UdpPacketCodec.MaxPacketSize(cipher, size)];
                var plain = new byte[size];
                Report($"{name} encrypt {size} B", seconds, () => UdpPacketCodec.Encrypt(cipher, key, payload, packet));
                Report($"{name} decrypt {size} B", seconds, () => UdpPacketCodec.TryDecrypt(cipher, key, packet, plain, out _));
            }

            var salt = new byte[cipher.SaltSize];
            var subkey = new byte[cipher.KeySize];
            var nonce = new byte[12];
            var body = new byte[64];
            var tag = new byte[16];
            Report("  random salt: SaltSource", seconds, () => SaltSource.Fill(salt));
            Report("  random salt: RandomNumberGenerator.Fill", seconds, () => RandomNumberGenerator.Fill(salt));
            Report("  subkey: Sha1Hmac.Hkdf", seconds, () => KeyDerivation.SessionSubkey(key, salt, subkey));
            Report("  subkey: HKDF.DeriveKey", seconds, () => HKDF.DeriveKey(HashAlgorithmName.SHA1, key, subkey, salt, "ss-subkey"u8));
            if (PacketAead.TryGet(cipher, out var packetAead))
            {
                Report("  seal 64 B, new key: PacketAead", seconds, () => packetAead.Seal(subkey, nonce, body, body, tag));
            }

            Report("  seal 64 B, new key: new .NET context", seconds, () =>
            {
                using var aead = cipher.CreateAead(subkey);
                aead.Encrypt(nonce, body, body, tag);
            });
        }
    }

    private static void Report(string label, double seconds, Action operation) =>
        Console.WriteLine($"{label,-44}{PerOperation.Measure(seconds, operation).Microseconds,8:F2} µs");
}
