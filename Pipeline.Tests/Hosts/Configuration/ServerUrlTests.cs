using System.Text;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;

namespace Shadowsocks.Pipeline.Tests.Hosts.Configuration;

/// <summary>SIP002 <c>ss://</c> URLs: the base64url and plain user parts, the legacy form, and errors that never echo the password.</summary>
public sealed class ServerUrlTests
{
    private static string Base64Url(string text, bool pad = false)
    {
        var encoded = Convert.ToBase64String(Encoding.UTF8.GetBytes(text)).Replace('+', '-').Replace('/', '_');
        return pad ? encoded : encoded.TrimEnd('=');
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Base64UrlUserInfo_WithOrWithoutPadding(bool pad)
    {
        // A password whose base64 needs the URL-safe alphabet ('?' and '>' encode to '/' and '+' in standard base64).
        var url = ServerUrl.Parse($"ss://{Base64Url("aes-256-gcm:pa??>>word", pad)}@192.168.100.1:8888/?outline=1#My%20Server");
        Assert.Equal(new ServerUrl("aes-256-gcm", "pa??>>word", "192.168.100.1", 8888, "My Server"), url);
    }

    [Fact]
    public void PlainPercentEncodedUserInfo_AsSip022Requires()
    {
        var url = ServerUrl.Parse("ss://2022-blake3-aes-256-gcm:YctPZ6U7xPPcU%2Bgp3u%2BsAFxoG3h8E%2FE0Tg5IOxQ3a4Q%3D@[2001:db8::1]:8888#Example3");
        Assert.Equal("2022-blake3-aes-256-gcm", url.Method);
        Assert.Equal("YctPZ6U7xPPcU+gp3u+sAFxoG3h8E/E0Tg5IOxQ3a4Q=", url.Password);
        Assert.Equal("2001:db8::1", url.Host);
        Assert.Equal(8888, url.Port);
    }

    [Fact]
    public void LegacyWholeBase64Form()
    {
        var url = ServerUrl.Parse($"ss://{Convert.ToBase64String(Encoding.UTF8.GetBytes("chacha20-ietf-poly1305:secret@example.test:443"))}#tag");
        Assert.Equal(new ServerUrl("chacha20-ietf-poly1305", "secret", "example.test", 443, "tag"), url);
    }

    [Theory]
    [InlineData("http://YWVzLTI1Ni1nY206c2VjcmV0@1.2.3.4:1", "not an ss:// URL")]
    [InlineData("ss://YWVzLTI1Ni1nY206c2VjcmV0@1.2.3.4", "port from 1 to 65535")]
    [InlineData("ss://YWVzLTI1Ni1nY206c2VjcmV0@1.2.3.4:70000", "port from 1 to 65535")]
    [InlineData("ss://!!!@1.2.3.4:1", "neither base64url nor method:password")]
    [InlineData("ss://c2VjcmV0@1.2.3.4:1", "must be method:password")] // base64 of "secret": no method
    [InlineData("ss://aes-256-gcm:@1.2.3.4:1", "password is empty")]
    [InlineData("ss://YWVzLTI1Ni1nY206c2VjcmV0@fe80::1", "an IPv6 host goes in brackets")] // was read as host "fe80:", port 1
    public void BadUrls_OneLineNamingTheFlag_WithoutThePassword(string text, string problem)
    {
        var error = Assert.Throws<UsageException>(() => ServerUrl.Parse(text));
        Assert.StartsWith("--server-url: ", error.Message);
        Assert.Contains(problem, error.Message);
        Assert.DoesNotContain("secret", error.Message);
        Assert.DoesNotContain("c2VjcmV0", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void ToString_LeavesThePasswordOut()
    {
        var url = ServerUrl.Parse("ss://aes-256-gcm:hunter2@example.test:8388");
        Assert.Equal("ss://aes-256-gcm@example.test:8388", url.ToString());
    }

    [Fact]
    public void ServerUrl_ConfiguresTheLocal()
    {
        var settings = TestSettings.Build("local", ["--server-url", $"ss://{Base64Url("aes-128-gcm:pw")}@10.1.2.3:8399", "-l", "1080"]);
        Assert.Equal("aes-128-gcm", settings.Relay.Cipher.Name);
        Assert.Equal("10.1.2.3:8399", settings.Relay.Server!.ToString());
        Assert.Equal(Shadowsocks.Pipeline.Core.Crypto.KeyDerivation.MasterKeyFromPassword(settings.Relay.Cipher, "pw"), settings.Relay.MasterKey);
    }
}
