using System.Net;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using static Shadowsocks.Pipeline.Tests.Core.Protocol.StreamCodecKit;

namespace Shadowsocks.Pipeline.Tests.Core.Protocol;

/// <summary>A multi-user server's users replaced while it runs (SIGHUP): requests are read against the new list at once.</summary>
public sealed class ServerUsersTests
{
    private static readonly byte[] s_header = Header(ShadowsocksAddress.FromIp(IPAddress.Loopback, 8080));

    [Fact]
    public void Replace_ServesTheNewList_AndReturnsTheUsersNoLongerServed()
    {
        var cipher = Cipher();
        var identity = Key(cipher);
        var (alice, bob, carol) = (new UserKey("alice", Key(cipher)), new UserKey("bob", Key(cipher)), new UserKey("carol", Key(cipher)));
        var table = new ServerUsers(cipher, identity, [alice, bob]);
        Assert.Equal("alice", Who(table, identity, alice));
        Assert.Equal("bob", Who(table, identity, bob));
        Assert.Null(Who(table, identity, carol));
        var bobBefore = Found(table, identity, bob);

        var gone = table.Replace([bob, carol]);

        Assert.Equal(["alice"], gone.Select(static u => u.Name));
        Assert.Null(Who(table, identity, alice));
        Assert.Equal("carol", Who(table, identity, carol));
        Assert.Same(bobBefore, Found(table, identity, bob)); // kept as it was, key schedules and all
        Assert.Equal(["bob", "carol"], table.Names.Order());
    }

    [Fact]
    public void Replace_AUserRenamedOrGivenANewKey_IsNoLongerServedUnderTheOld()
    {
        var cipher = Cipher();
        var identity = Key(cipher);
        var alice = new UserKey("alice", Key(cipher));
        var bob = new UserKey("bob", Key(cipher));
        var table = new ServerUsers(cipher, identity, [alice, bob]);

        var gone = table.Replace([new UserKey("alicia", alice.Key), new UserKey("bob", Key(cipher))]);

        Assert.Equal(["alice", "bob"], gone.Select(static u => u.Name).Order());
        Assert.Equal("alicia", Who(table, identity, alice));
        Assert.Null(Who(table, identity, bob));
    }

    [Fact]
    public void Replace_WithAListTheConstructorRefuses_ChangesNothing()
    {
        var cipher = Cipher();
        var identity = Key(cipher);
        var alice = new UserKey("alice", Key(cipher));
        var table = new ServerUsers(cipher, identity, [alice]);
        var carol = new UserKey("carol", Key(cipher));

        Assert.Throws<ArgumentException>(() => table.Replace([carol, new UserKey("twin", carol.Key)]));
        Assert.Throws<ArgumentException>(() => table.Replace([new UserKey("short", new byte[cipher.KeySize - 1])]));

        Assert.Equal("alice", Who(table, identity, alice));
        Assert.Null(Who(table, identity, carol));
    }

    /// <summary>The user a request from <paramref name="user"/>'s local is read as, or null when it fails to authenticate.</summary>
    private static string? Who(ServerUsers table, byte[] identity, UserKey user) => Found(table, identity, user)?.Name;

    private static ServerUser? Found(ServerUsers table, byte[] identity, UserKey user)
    {
        var cipher = Cipher();
        using var request = ShadowsocksStreamCodec.CreateEncryptor(cipher, user.Key, time: TimeProvider.System, identities: new IdentityChain(cipher, [identity], user.Key));
        var wire = Encrypt(request, [.. s_header, .. "data"u8]);
        using var server = (Aead2022StreamDecryptor)ShadowsocksStreamCodec.CreateDecryptor(cipher, identity, time: TimeProvider.System, users: table);
        var status = server.Decrypt(wire, new byte[server.MaxOutputSize(wire.Length)], out _);
        return status == DecryptStatus.Ok ? server.User : null;
    }

    private static CipherInfo Cipher()
    {
        Assert.True(CipherCatalog.TryGet("2022-blake3-aes-256-gcm", out var cipher));
        return cipher;
    }

    private static byte[] Key(CipherInfo cipher) => RandomNumberGenerator.GetBytes(cipher.KeySize);
}
