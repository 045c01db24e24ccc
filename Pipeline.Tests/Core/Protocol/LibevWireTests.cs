using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>
/// Wire compatibility of the codecs alone, before any relay: real shadowsocks-libev processes on one side, the bare
/// encoder and decoder on the other, for every method ss-libev accepts.
/// </summary>
public sealed class LibevWireTests
{
    private const string Password = "wire-test-password";
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    public static TheoryData<string> Methods() => new(LibevPeer.Methods);

    /// <summary>ss-local encrypts a SOCKS5 CONNECT and payload; our decoder reads them; our encoder answers through it.</summary>
    [Theory]
    [MemberData(nameof(Methods))]
    public async Task LibevLocal_ToOurDecoder_AndOurEncoderBack(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var cipher = Method(method);
        var key = KeyDerivation.MasterKeyFromPassword(cipher, Password);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var local = await LibevPeer.StartAsync("ss-local", "-s", "127.0.0.1", "-p", port, "-b", "127.0.0.1", "-k", Password, "-m", method);

        var request = RandomNumberGenerator.GetBytes(100_000);
        var (client, reply) = await Socks5TestClient.ConnectAsync(local.EndPoint, "wire.example", 4321, cancel.Token);
        using var _ = client;
        Assert.Equal(0, reply);
        var sending = client.SendAsync(request, SocketFlags.None, cancel.Token).AsTask();

        using var upstream = await listener.AcceptAsync(cancel.Token);
        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
        var plain = new MemoryStream();
        var buffer = new byte[64 * 1024];
        var output = new byte[decryptor.MaxOutputSize(buffer.Length)];
        ShadowsocksAddress address = default;
        var headerLength = -1;
        while (headerLength < 0 || plain.Length - headerLength < request.Length)
        {
            var n = await upstream.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            Assert.NotEqual(0, n);
            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(buffer.AsSpan(0, n), output, out var written));
            plain.Write(output, 0, written);
            if (headerLength < 0 && AddressHeader.TryRead(plain.ToArray(), out address, out var consumed) == AddressParseStatus.Ok)
            {
                headerLength = consumed;
            }
        }

        await sending;
        Assert.Equal("wire.example", address.Host);
        Assert.Equal(4321, address.Port);
        Assert.Equal(SHA256.HashData(request), SHA256.HashData(plain.ToArray().AsSpan(headerLength)));

        // Back: our encoder's bytes reach the SOCKS5 client as plaintext.
        var response = RandomNumberGenerator.GetBytes(70_000);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, key);
        var ciphertext = new byte[encryptor.MaxOutputSize(response.Length)];
        var length = encryptor.Encrypt(response, ciphertext);
        await upstream.SendAsync(ciphertext.AsMemory(0, length), SocketFlags.None, cancel.Token);
        var received = new byte[response.Length];
        await Socks5TestClient.ReadExactlyAsync(client, received, cancel.Token);
        Assert.Equal(response, received);
    }

    /// <summary>Our encoder's bytes sent straight to ss-server reach an echo destination; the echo decodes with our decoder.</summary>
    [Theory]
    [MemberData(nameof(Methods))]
    public async Task OurEncoder_ToLibevServer_ReachesTheDestination(string method)
    {
        using var cancel = new CancellationTokenSource(s_timeout);
        var cipher = Method(method);
        var key = KeyDerivation.MasterKeyFromPassword(cipher, Password);
        await using var destination = new EchoDestination();
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", method);

        var payload = RandomNumberGenerator.GetBytes(100_000);
        var address = ShadowsocksAddress.FromEndPoint(destination.EndPoint);
        var plain = new byte[AddressHeader.GetSize(address) + payload.Length];
        var headerLength = AddressHeader.Write(address, plain);
        payload.CopyTo(plain, headerLength);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, key);
        var ciphertext = new byte[encryptor.MaxOutputSize(plain.Length)];
        var length = encryptor.Encrypt(plain, ciphertext);

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint, cancel.Token);
        var sending = socket.SendAsync(ciphertext.AsMemory(0, length), SocketFlags.None, cancel.Token).AsTask();

        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, key);
        var echoed = new MemoryStream();
        var buffer = new byte[64 * 1024];
        var output = new byte[decryptor.MaxOutputSize(buffer.Length)];
        while (echoed.Length < payload.Length)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            Assert.NotEqual(0, n);
            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(buffer.AsSpan(0, n), output, out var written));
            echoed.Write(output, 0, written);
        }

        await sending;
        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(echoed.ToArray()));
        Assert.Equal(payload.Length, destination.BytesReceived);
    }

    private static CipherInfo Method(string name) =>
        CipherCatalog.TryGet(name, out var cipher) ? cipher : throw new InvalidOperationException($"{name} missing from the catalog");
}
