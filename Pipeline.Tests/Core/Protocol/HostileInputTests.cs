using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Tests.Hosts.Configuration;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// Property-based hostile input for every parser, a bounded number of cases from a fixed seed (reproducible in CI):
/// random bytes and mutations of valid messages. Nothing but the parsers' typed results (or, for the config file,
/// <see cref="UsageException"/>) may come out.
/// </summary>
public sealed class HostileInputTests
{
    private const int Cases = 5_000;

    [Fact]
    public void Socks5AndAddressHeaderParsers_NeverThrow()
    {
        var random = new Random(20261125);
        byte[][] seeds = [[5, 1, 0], [5, 2, 0, 2], [5, 1, 0, 1, 127, 0, 0, 1, 0, 80], [5, 1, 0, 3, 4, .. "host"u8, 1, 187], [0, 0, 0, 4, .. new byte[16], 0, 53],
            [1, 5, .. "alice"u8, 3, .. "pwd"u8]];
        for (var i = 0; i < Cases; i++)
        {
            var input = Mutate(random, seeds[random.Next(seeds.Length)]);
            _ = Socks5Codec.TryReadGreeting(input, out _, out var c1);
            _ = Socks5Codec.TryReadRequest(input, out _, out _, out var c2);
            _ = Socks5Codec.TryReadUdpHeader(input, out _, out _, out var c3);
            var status = AddressHeader.TryRead(input, out var address, out var c4);
            if (Socks5Codec.TryReadUsernamePassword(input, out var name, out var password, out var c5) == AddressParseStatus.Ok)
            {
                // RFC 1929: VER, ULEN, UNAME, PLEN, PASSWD; both of 1 to 255 bytes, within what was consumed.
                Assert.Equal(2 + name.GetOffsetAndLength(c5).Length + 1 + password.GetOffsetAndLength(c5).Length, c5);
                Assert.InRange(name.GetOffsetAndLength(c5).Length, 1, 255);
                Assert.InRange(password.GetOffsetAndLength(c5).Length, 1, 255);
            }

            Assert.InRange(c5, 0, input.Length);
            Assert.InRange(c1, 0, input.Length);
            Assert.InRange(c2, 0, input.Length);
            Assert.InRange(c3, 0, input.Length);
            Assert.InRange(c4, 0, input.Length);
            if (status == AddressParseStatus.Ok)
            {
                // Whatever parses must write back to the same bytes.
                var again = new byte[AddressHeader.GetSize(address)];
                AddressHeader.Write(address, again);
                Assert.Equal(input[..c4], again);
            }
        }
    }

    [Theory]
    [InlineData("aes-256-gcm")]
    [InlineData("chacha20-ietf-poly1305")]
    [InlineData("aes-256-cfb")]
    [InlineData("salsa20")]
    public void StreamDecoders_GetOnlyTypedResults(string method)
    {
        CipherCatalog.TryGet(method, out var cipher);
        var key = KeyDerivation.MasterKeyFromPassword(cipher, "fuzz");
        var random = new Random(method.Length);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, key);
        var valid = new byte[encryptor.MaxOutputSize(3000)];
        var length = encryptor.Encrypt(RandomNumberGenerator.GetBytes(3000), valid);
        valid = valid[..length];
        for (var i = 0; i < Cases / 10; i++)
        {
            using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
            var input = Mutate(random, valid);
            var output = new byte[decryptor.MaxOutputSize(input.Length) + 64];
            var offset = 0;
            while (offset < input.Length)
            {
                var piece = Math.Min(input.Length - offset, random.Next(1, 2000));
                var status = decryptor.Decrypt(input.AsSpan(offset, piece), output, out var written);
                Assert.InRange(written, 0, output.Length);
                if (status != DecryptStatus.Ok)
                {
                    Assert.Equal(CipherFamily.Aead, cipher.Family); // stream methods cannot fail
                    break;
                }

                offset += piece;
            }
        }
    }

    [Theory]
    [InlineData("aes-128-gcm")]
    [InlineData("xchacha20-ietf-poly1305")]
    [InlineData("rc4-md5")]
    public void UdpPackets_GetOnlyTypedResults(string method)
    {
        CipherCatalog.TryGet(method, out var cipher);
        var key = KeyDerivation.MasterKeyFromPassword(cipher, "fuzz");
        var random = new Random(7);
        var valid = new byte[UdpPacketCodec.MaxPacketSize(cipher, 300)];
        UdpPacketCodec.Encrypt(cipher, key, RandomNumberGenerator.GetBytes(300), valid);
        for (var i = 0; i < Cases; i++)
        {
            var input = Mutate(random, valid);
            var payload = new byte[input.Length];
            if (UdpPacketCodec.TryDecrypt(cipher, key, input, payload, out var n))
            {
                Assert.InRange(n, 0, input.Length);
            }
        }
    }

    [Fact]
    public void ConfigFiles_FailOnlyWithAOneLineUsageError()
    {
        var random = new Random(99);
        const string valid = """{ "server": "127.0.0.1", "server_port": 8388, "password": "pw", "method": "aes-256-gcm", "timeout": 60, "mode": "tcp_and_udp", "forbidden_ip": ["10.0.0.0/8"], "nameserver": "1.1.1.1" }""";
        var path = Path.GetTempFileName();
        try
        {
            for (var i = 0; i < 500; i++)
            {
                var bytes = Mutate(random, System.Text.Encoding.UTF8.GetBytes(valid));
                File.WriteAllBytes(path, bytes);
                try
                {
                    TestSettings.Build("server", ["-c", path]);
                }
                catch (UsageException e)
                {
                    Assert.DoesNotContain("\n", e.Message, StringComparison.Ordinal);
                    Assert.NotEmpty(e.Message);
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Random bytes, or a valid input with bytes flipped, cut, duplicated or extended.</summary>
    private static byte[] Mutate(Random random, byte[] seed)
    {
        switch (random.Next(5))
        {
            case 0:
                var noise = new byte[random.Next(0, 400)];
                random.NextBytes(noise);
                return noise;
            case 1:
                return seed[..random.Next(0, seed.Length + 1)];
            case 2:
                var flipped = seed.ToArray();
                for (var n = random.Next(1, 4); n > 0 && flipped.Length > 0; n--)
                {
                    flipped[random.Next(flipped.Length)] ^= (byte)(1 << random.Next(8));
                }

                return flipped;
            case 3:
                var extra = new byte[random.Next(1, 64)];
                random.NextBytes(extra);
                return [.. seed, .. extra];
            default:
                var copy = seed.ToArray();
                if (copy.Length > 0)
                {
                    copy[random.Next(copy.Length)] = (byte)random.Next(256);
                }

                return copy;
        }
    }
}
