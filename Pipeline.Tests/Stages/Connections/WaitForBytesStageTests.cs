using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Stages.Relay;

namespace Shadowsocks.Pipeline.Tests.Stages.Connections;

/// <summary>
/// A server's clients that say nothing, or send their header a few bytes at a time, wait for their bytes outside the
/// header stage. Before, each held one of the stage's slots (1,024 by default) until the idle timeout, so that many
/// silent connections, which need no key, stopped the server from serving anyone for a minute.
/// </summary>
public sealed class WaitForBytesStageTests
{
    private static readonly byte[] s_hello = Encoding.ASCII.GetBytes("hello through a server that has silent clients");

    [Fact]
    public async Task SilentAndSlowClients_HoldNoHeaderSlot_AndTheNextClientIsServed()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var options = RelayChain.Options("aes-256-gcm", "silent clients", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Forbidden = ForbiddenAddresses.None,
            IdleTimeout = TimeSpan.FromMinutes(10), // far beyond the test's deadline: a slot held until then fails it
            Pipeline = PipelineOptions.Default with { Handshake = new StageOptions(2, 4) }, // two headers at once, four held
        };
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        // Eight clients that connect and say nothing, and four that send a few bytes of a salt and stop: together
        // three times what the header stage holds.
        var idle = new List<Socket>();
        try
        {
            for (var i = 0; i < 12; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                idle.Add(socket);
                await socket.ConnectAsync(server.LocalEndPoint, cancel.Token);
                if (i >= 8)
                {
                    await socket.SendAsync(new byte[] { 1, 2, 3 }, SocketFlags.None, cancel.Token);
                }
            }

            while (server.ActiveSessions < idle.Count)
            {
                await Task.Delay(20, cancel.Token);
            }

            // A client with the key is served all the same.
            var echoed = await EchoAsync(server.LocalEndPoint, options, Wire(options, destination.EndPoint), cancel.Token);
            Assert.Equal(s_hello, echoed);
        }
        finally
        {
            idle.ForEach(static s => s.Dispose());
        }
    }

    [Fact]
    public async Task AHeaderSentAFewBytesAtATime_IsRelayed()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var destination = new EchoDestination();
        var options = RelayChain.Options("aes-256-gcm", "a few bytes at a time", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Forbidden = ForbiddenAddresses.None,
        };
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        // The salt, the length, its tag and the header cross the pieces' edges: each piece comes back through the
        // wait with what the stage had so far.
        var echoed = await EchoAsync(server.LocalEndPoint, options, Wire(options, destination.EndPoint), cancel.Token, pieceSize: 7);
        Assert.Equal(s_hello, echoed);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    public async Task AHeaderSentAFewBytesAtATime_HasOneReadHeaderSpan_AndOneWaitSpan(int pieceSize)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var spans = new ConnectionSpans();
        await using var destination = new EchoDestination();
        var options = RelayChain.Options("aes-256-gcm", "spans of a header in pieces", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            Forbidden = ForbiddenAddresses.None,
        };
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        // Each piece comes back through the wait (a span per piece was ~50 read_header and wait_for_bytes spans for
        // one connection sending a byte at a time).
        var clientPort = 0;
        var echoed = await EchoAsync(server.LocalEndPoint, options, Wire(options, destination.EndPoint), cancel.Token, pieceSize, port => clientPort = port);
        Assert.Equal(s_hello, echoed);

        var children = await spans.ChildrenAsync("server connection", clientPort, TimeSpan.FromSeconds(30));
        Assert.NotNull(children);
        var readHeader = Assert.Single(children, static s => s.OperationName == "read_header");
        var wait = Assert.Single(children, static s => s.OperationName == "wait_for_bytes");
        Assert.Equal(ActivityStatusCode.Unset, readHeader.Status);
        Assert.Equal(ActivityStatusCode.Unset, wait.Status);

        // The header's span runs from its first piece to its last, the wait's from the accept to the last piece's arrival.
        Assert.True(wait.StartTimeUtc <= readHeader.StartTimeUtc, "the wait for the first bytes starts before the header's span");
        Assert.True(readHeader.StartTimeUtc < wait.StartTimeUtc + wait.Duration, "the header's span starts at its first piece, before the last wait ended");
        Assert.True(wait.StartTimeUtc + wait.Duration <= readHeader.StartTimeUtc + readHeader.Duration, "the last bytes arrive before the header is complete");
    }

    [Fact]
    public async Task AProbeSendingAFewBytesAtATime_FailsOneReadHeaderSpan_AndItsWaitSpanIsFine()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var spans = new ConnectionSpans();
        var options = RelayChain.Options("aes-256-gcm", "a probe in pieces", new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();

        int clientPort;
        using (var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true })
        {
            await client.ConnectAsync(server.LocalEndPoint, cancel.Token);
            clientPort = ((IPEndPoint)client.LocalEndPoint!).Port;
            var probe = new byte[32 + 2 + 16]; // a salt, a length and its tag: all zeros, which fail authentication
            for (var sent = 0; sent < probe.Length; sent += 5)
            {
                await client.SendAsync(probe.AsMemory(sent, 5), SocketFlags.None, cancel.Token);
                await Task.Delay(30, cancel.Token); // lets the server read this piece alone (not an assertion: any split works)
            }

            // Drained, not closed (probe resistance): the connection's span ends once the probe closes.
        }

        var children = await spans.ChildrenAsync("server connection", clientPort, TimeSpan.FromSeconds(30));
        Assert.NotNull(children);
        var readHeader = Assert.Single(children, static s => s.OperationName == "read_header");
        Assert.Equal(ActivityStatusCode.Error, readHeader.Status);
        Assert.StartsWith("authentication failed", readHeader.StatusDescription, StringComparison.Ordinal);
        Assert.Equal(ActivityStatusCode.Unset, Assert.Single(children, static s => s.OperationName == "wait_for_bytes").Status);
    }

    /// <summary>The client's first bytes: a salt, then the destination's address header and <see cref="s_hello"/> in one chunk.</summary>
    private static byte[] Wire(RelayOptions options, IPEndPoint destination)
    {
        var address = ShadowsocksAddress.FromEndPoint(destination);
        var plain = new byte[AddressHeader.GetSize(address) + s_hello.Length];
        var headerSize = AddressHeader.Write(address, plain);
        s_hello.CopyTo(plain, headerSize);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        var wire = new byte[encryptor.MaxOutputSize(plain.Length)];
        return wire[..encryptor.Encrypt(plain, wire)];
    }

    /// <summary>Sends <paramref name="wire"/> (in pieces, each after the server has had time to read the last) and returns what the destination echoed, decrypted.</summary>
    private static async Task<byte[]> EchoAsync(IPEndPoint server, RelayOptions options, byte[] wire, CancellationToken cancellationToken, int pieceSize = int.MaxValue, Action<int>? connected = null)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(server, cancellationToken);
        connected?.Invoke(((IPEndPoint)client.LocalEndPoint!).Port);
        for (var sent = 0; sent < wire.Length; sent += pieceSize)
        {
            await client.SendAsync(wire.AsMemory(sent, Math.Min(pieceSize, wire.Length - sent)), SocketFlags.None, cancellationToken);
            if (sent + pieceSize < wire.Length)
            {
                await Task.Delay(30, cancellationToken); // lets the server read this piece alone (not an assertion: any split works)
            }
        }

        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(options.Cipher, options.MasterKey);
        var echoed = new MemoryStream();
        var input = new byte[4096];
        var output = new byte[8192];
        while (echoed.Length < s_hello.Length)
        {
            var read = await client.ReceiveAsync(input, SocketFlags.None, cancellationToken);
            Assert.True(read > 0, $"the server closed after {echoed.Length} echoed bytes");
            Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(input.AsSpan(0, read), output, out var written));
            echoed.Write(output, 0, written);
        }

        return echoed.ToArray();
    }
}
