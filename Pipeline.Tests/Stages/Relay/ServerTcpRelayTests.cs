using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>The server relay as a whole: how it stops.</summary>
public sealed class ServerTcpRelayTests
{
    private const int Clients = 20;

    /// <summary>
    /// Clients in the middle of their header, each sending a byte at a time, so that their sessions go round the
    /// header stage and the wait for bytes when the relay stops. A session the header stage sent back toward the wait
    /// stage after that stage had completed stayed in the header stage's output, never disposed (its root span never
    /// ended, its connection slot never freed), and every session behind it there too; their sockets were closed (the
    /// stop aborts every session), so the clients saw no difference. A race that cannot be forced from outside: one
    /// round left sessions undisposed in about one run of four without the fix, so the test stops several relays.
    /// </summary>
    [Fact]
    public async Task Dispose_WithClientsMidHeader_ClosesAndDisposesEverySession()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        for (var round = 0; round < 5; round++)
        {
            var (closed, undisposed) = await StopMidHeaderAsync(cancel.Token);
            Assert.Equal(Clients, closed);
            Assert.Equal(0, undisposed);
        }
    }

    /// <summary>
    /// Starts a server, gets <see cref="Clients"/> clients mid-header and disposes the server. Returns how many clients
    /// saw their connection end, and how many sessions were still not disposed at the deadline.
    /// </summary>
    private static async Task<(int Closed, int Undisposed)> StopMidHeaderAsync(CancellationToken cancellationToken)
    {
        var options = RelayChain.Options("aes-256-gcm", "stopped mid-header", new IPEndPoint(IPAddress.Loopback, 0)) with
        {
            IdleTimeout = TimeSpan.FromMinutes(10), // far beyond the test's deadline: only the stop ends these sessions
        };
        var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        var clients = new List<Socket>();
        using var stopSending = new CancellationTokenSource();
        var senders = new List<Task>();
        try
        {
            server.Start();

            // A first chunk as large as AEAD allows: its header cannot be read before all of it is there (16 KiB), so
            // a byte at a time keeps each client mid-header for as long as the round lasts.
            var wire = FirstChunk(options);
            for (var i = 0; i < Clients; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                clients.Add(client);
                await client.ConnectAsync(server.LocalEndPoint, cancellationToken);
                await client.SendAsync(wire.AsMemory(0, 50), SocketFlags.None, cancellationToken);
                senders.Add(TrickleAsync(client, wire.AsMemory(50), stopSending.Token));
            }

            while (server.ActiveSessions < Clients)
            {
                await Task.Delay(20, cancellationToken);
            }

            await Task.Delay(20, cancellationToken); // their pieces going round the header stage and the wait
            await server.DisposeAsync();

            // Every client sees its connection end (an end of stream, or a reset), and every session is disposed.
            var closed = 0;
            foreach (var client in clients)
            {
                closed += await EndsAsync(client, cancellationToken) ? 1 : 0;
            }

            while (server.ActiveSessions > 0 && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(20, CancellationToken.None);
            }

            return (closed, server.ActiveSessions);
        }
        finally
        {
            await stopSending.CancelAsync();
            await Task.WhenAll(senders);
            clients.ForEach(static c => c.Dispose());
            await server.DisposeAsync();
        }
    }

    /// <summary>A salt, then one chunk of 0x3FFF bytes, the destination's address header first.</summary>
    private static byte[] FirstChunk(RelayOptions options)
    {
        var plain = new byte[0x3FFF];
        AddressHeader.Write(ShadowsocksAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 9)), plain);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        var wire = new byte[encryptor.MaxOutputSize(plain.Length)];
        return wire[..encryptor.Encrypt(plain, wire)];
    }

    /// <summary>Sends <paramref name="rest"/> a byte at a time until the connection ends or the test stops it.</summary>
    private static async Task TrickleAsync(Socket client, ReadOnlyMemory<byte> rest, CancellationToken cancellationToken)
    {
        try
        {
            for (var i = 0; i < rest.Length && !cancellationToken.IsCancellationRequested; i++)
            {
                await client.SendAsync(rest.Slice(i, 1), SocketFlags.None, cancellationToken);
                await Task.Yield();
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The server closed it (or the test is over).
        }
    }

    /// <summary>Whether <paramref name="client"/> reads an end of stream or a reset before the test's deadline.</summary>
    private static async Task<bool> EndsAsync(Socket client, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        try
        {
            while (await client.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
            {
                // A server mid-header sends nothing; anything read is not an end.
            }

            return true;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
