using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.ReadHeader;

/// <summary>
/// The server's read-header stage with a first chunk as large as AEAD allows (0x3FFF payload bytes: the header and
/// the first data), sent in one write. Its first receive takes one chunk's worth of ciphertext, so the end of such a
/// chunk waits in the decryptor for the next receive; the stage once took that for an endless header and drained the
/// connection like a probe. Our own local sends such a chunk for a long host name with an upload behind it.
/// </summary>
public sealed class ReadHeaderStageTests
{
    [Theory]
    [InlineData("aes-256-gcm", 0x3FFF)]
    [InlineData("aes-256-gcm", 16_352)]
    [InlineData("aes-128-gcm", 0x3FFF)]
    [InlineData("chacha20-ietf-poly1305", 0x3FFF)]
    [InlineData("aes-256-gcm", 16_000)]
    public async Task ALargeFirstChunk_InOneWrite_IsRelayed(string method, int firstChunkPayload)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var destination = new EchoDestination();
        var options = RelayChain.Options(method, "large first chunk", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        var plain = new byte[firstChunkPayload];
        var headerSize = AddressHeader.Write(ShadowsocksAddress.FromEndPoint(destination.EndPoint), plain);
        RandomNumberGenerator.Fill(plain.AsSpan(headerSize));
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        var wire = new byte[encryptor.MaxOutputSize(plain.Length)];
        wire = wire[..encryptor.Encrypt(plain, wire)];

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(server.LocalEndPoint, cancel.Token);
        await client.SendAsync(wire, SocketFlags.None, cancel.Token);

        // The destination echoes the data behind the header; the server sends it back encrypted.
        var expected = plain.AsMemory(headerSize);
        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(options.Cipher, options.MasterKey);
        var echoed = new MemoryStream();
        var input = new byte[64 * 1024];
        var output = new byte[2 * 64 * 1024];
        while (echoed.Length < expected.Length)
        {
            var read = await client.ReceiveAsync(input, SocketFlags.None, cancel.Token);
            Assert.True(read > 0, $"the server closed after {echoed.Length} of {expected.Length} echoed bytes");
            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(input.AsSpan(0, read), output, out var written));
            echoed.Write(output, 0, written);
        }

        Assert.True(expected.Span.SequenceEqual(echoed.ToArray()));
        Assert.Equal(1, destination.Accepted);
    }
}
