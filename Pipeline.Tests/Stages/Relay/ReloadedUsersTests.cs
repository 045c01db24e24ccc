using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using static Shadowsocks.Pipeline.Tests.Core.Protocol.StreamCodecKit;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A multi-user server's reload (what UsersReload.Apply runs: Replace, then EndConnectionsOf by the users no longer
/// served) against a connection that named its user before the Replace and is not yet marked with it when the open
/// ones are ended. (Found in review: such a connection went through, and lived on.)
/// </summary>
public sealed class ReloadedUsersTests
{
    [Fact]
    public async Task ARemovedUsersConnection_StillReadingItsHeaderWhenTheReloadRuns_IsRefused()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        Assert.True(CipherCatalog.TryGet("2022-blake3-aes-256-gcm", out var cipher));
        var identity = RandomNumberGenerator.GetBytes(cipher.KeySize);
        var alice = new UserKey("reload-alice", RandomNumberGenerator.GetBytes(cipher.KeySize));
        var bob = new UserKey("reload-bob", RandomNumberGenerator.GetBytes(cipher.KeySize));
        var users = new ServerUsers(cipher, identity, [alice]);
        await using var destination = new EchoDestination();
        var options = new RelayOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Cipher = cipher,
            MasterKey = identity,
            Users = [alice],
            IdleTimeout = TimeSpan.FromSeconds(30),
            HandshakeTimeout = TimeSpan.FromSeconds(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Forbidden = ForbiddenAddresses.None,
        };
        await using var server = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System, users: users);
        server.Start();

        // Alice's local: salt and identity header first (the server looks her up: FindTcp), the rest a moment later.
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(cipher, alice.Key, time: TimeProvider.System, identities: new IdentityChain(cipher, [identity], alice.Key));
        var wire = Encrypt(encryptor, [.. Header(ShadowsocksAddress.FromEndPoint(destination.EndPoint)), .. "hello"u8]);
        var saltAndIdentity = cipher.SaltSize + AesBlock.Size;
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(server.LocalEndPoint, cancel.Token);
        await client.SendAsync(wire.AsMemory(0, saltAndIdentity), SocketFlags.None, cancel.Token);
        await Task.Delay(300, cancel.Token); // the read-header stage has read them and found alice

        // The reload, as UsersReload.Apply runs it: alice off the list, her open connections ended.
        var gone = users.Replace([bob]);
        Assert.Equal(["reload-alice"], gone.Select(static u => u.Name));
        var ended = server.EndConnectionsOf(new HashSet<string>(["reload-alice"], StringComparer.Ordinal));

        // The rest of her request: refused (she is no longer served), so nothing comes back.
        await client.SendAsync(wire.AsMemory(saltAndIdentity), SocketFlags.None, cancel.Token);
        using var decryptor = ShadowsocksStreamCodec.CreateDecryptor(cipher, alice.Key, request: encryptor, time: TimeProvider.System);
        var input = new byte[4096];
        var plain = new byte[8192];
        var echoed = 0;
        using var quiet = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token);
        quiet.CancelAfter(TimeSpan.FromSeconds(3));
        try
        {
            while (echoed < 5)
            {
                var read = await client.ReceiveAsync(input, SocketFlags.None, quiet.Token);
                if (read == 0)
                {
                    break;
                }

                Assert.Equal(DecryptStatus.Ok, decryptor.Decrypt(input.AsSpan(0, read), plain.AsSpan(echoed), out var written));
                echoed += written;
            }
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
        }
        catch (SocketException)
        {
        }

        // Not marked with her name when the reload looked (ended 0), it is refused once it is: nothing goes through.
        Assert.Equal(0, ended);
        Assert.Equal(0, echoed);
        Assert.Equal(0, destination.Accepted);
    }
}
