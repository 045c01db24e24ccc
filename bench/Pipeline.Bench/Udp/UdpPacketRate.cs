using System.Diagnostics;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Bench.Udp;

/// <summary>
/// What one UDP packet's cryptography costs, whole and in parts: encrypt and decrypt of a 64-byte and a
/// 1,400-byte payload (fresh salt, subkey and AEAD context per packet, as SIP004 requires), then the parts on their
/// own (32 random bytes, HKDF-SHA1, the AEAD context, the seal). Microseconds per operation, single thread.
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
            Report($"{name}   random salt", seconds, () => RandomNumberGenerator.Fill(salt));
            Report($"{name}   HKDF-SHA1 subkey", seconds, () => KeyDerivation.SessionSubkey(key, salt, subkey));
            Report($"{name}   AEAD context", seconds, () => cipher.CreateAead(subkey).Dispose());
            using var aead = cipher.CreateAead(subkey);
            var nonce = new byte[aead.NonceSize];
            var body = new byte[64];
            var tag = new byte[16];
            Report($"{name}   seal 64 B", seconds, () => aead.Encrypt(nonce, body, body, tag));
        }
    }

    private static void Report(string label, double seconds, Action operation)
    {
        for (var i = 0; i < 20_000; i++)
        {
            operation(); // warm-up: tiered JIT
        }

        var watch = Stopwatch.StartNew();
        long count = 0;
        while (watch.Elapsed.TotalSeconds < seconds)
        {
            for (var i = 0; i < 1000; i++)
            {
                operation();
            }

            count += 1000;
        }

        Console.WriteLine($"{label,-44}{watch.Elapsed.TotalMicroseconds / count,8:F2} µs");
    }
}
