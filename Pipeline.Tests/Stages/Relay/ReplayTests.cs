using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A recorded first packet replayed to the server never reaches the destination a second time, and gets no answer; nor
/// does the server's own answer sent back to it (a reflection), which the same key would otherwise read as a request.
/// </summary>
public sealed class ReplayTests
{
    [Theory]
    [InlineData("aes-256-gcm")]
    [InlineData("chacha20-ietf-poly1305")]
    [InlineData("aes-256-cfb")]
    public async Task ReplayedFirstPacket_IsDrained_NeverReachesTheDestinationTwice(string method)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var destination = new EchoDestination();
        var options = RelayChain.Options(method, "replay", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        // The recording: address header and data, encrypted once.
        var address = ShadowsocksAddress.FromEndPoint(destination.EndPoint);
        var payload = RandomNumberGenerator.GetBytes(200);
        var plain = new byte[AddressHeader.GetSize(address) + payload.Length];
        payload.CopyTo(plain, AddressHeader.Write(address, plain));
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        var recording = new byte[encryptor.MaxOutputSize(plain.Length)];
        recording = recording[..encryptor.Encrypt(plain, recording)];

        using (var original = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await original.ConnectAsync(server.LocalEndPoint, cancel.Token);
            await original.SendAsync(recording, SocketFlags.None, cancel.Token);
            var echoed = new byte[100];
            Assert.True(await original.ReceiveAsync(echoed, SocketFlags.None, cancel.Token) > 0);
        }

        using var replay = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await replay.ConnectAsync(server.LocalEndPoint, cancel.Token);
        await replay.SendAsync(recording, SocketFlags.None, cancel.Token);

        // No answer and no close: the server keeps reading (draining) while the client stays.
        using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(700));
        var buffer = new byte[100];
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await replay.ReceiveAsync(buffer, SocketFlags.None, quiet.Token));
        await replay.SendAsync(RandomNumberGenerator.GetBytes(5000), SocketFlags.None, cancel.Token); // still accepted
        Assert.Equal(1, destination.Accepted);
    }

    [Theory]
    [InlineData("aes-256-gcm")]
    [InlineData("chacha20-ietf-poly1305")]
    [InlineData("aes-256-cfb")]
    public async Task ReflectedResponse_IsDrained_NeverReachesTheDestination(string method)
    {
        // The client asks the echo destination to send back an address header (the destination's own) and data. The
        // server's response then decrypts, under the one master key SIP004 and stream ciphers use both ways, to a
        // request for the destination: sent back to the server, only the salt it generated tells it from one.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var destination = new EchoDestination();
        var options = RelayChain.Options(method, "reflect", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        var address = ShadowsocksAddress.FromEndPoint(destination.EndPoint);
        var echoed = new byte[AddressHeader.GetSize(address) + 100];
        RandomNumberGenerator.Fill(echoed.AsSpan(AddressHeader.Write(address, echoed)));
        var plain = new byte[AddressHeader.GetSize(address) + echoed.Length];
        echoed.CopyTo(plain, AddressHeader.Write(address, plain));
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        var request = new byte[encryptor.MaxOutputSize(plain.Length)];
        request = request[..encryptor.Encrypt(plain, request)];

        // The response as sent, recorded until it decrypts to all the echoed bytes.
        var response = new MemoryStream();
        using (var original = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await original.ConnectAsync(server.LocalEndPoint, cancel.Token);
            await original.SendAsync(request, SocketFlags.None, cancel.Token);
            using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(options.Cipher, options.MasterKey);
            var buffer = new byte[4096];
            var decrypted = 0;
            while (decrypted < echoed.Length)
            {
                var n = await original.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
                Assert.True(n > 0, $"the server closed after {decrypted} of {echoed.Length} echoed bytes");
                response.Write(buffer, 0, n);
                var output = new byte[decryptor.MaxOutputSize(n)];
                Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(buffer.AsSpan(0, n), output, out var written));
                decrypted += written;
            }
        }

        Assert.Equal(1, destination.Accepted);
        using var reflected = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await reflected.ConnectAsync(server.LocalEndPoint, cancel.Token);
        await reflected.SendAsync(response.ToArray(), SocketFlags.None, cancel.Token);

        // No answer and no close: drained as any replay, while the client stays.
        using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(700));
        var received = new byte[100];
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await reflected.ReceiveAsync(received, SocketFlags.None, quiet.Token));
        await reflected.SendAsync(RandomNumberGenerator.GetBytes(5000), SocketFlags.None, cancel.Token); // still accepted
        Assert.Equal(1, destination.Accepted);
    }
}
