using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Hosts;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

public sealed class VerbTests
{
    [Fact]
    public async Task Methods_PrintsEveryCatalogMethodWithSizes()
    {
        var output = new StringWriter();
        Assert.Equal(0, await Program.RunAsync(["methods"], output, new StringWriter(), CancellationToken.None));
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(CipherCatalog.All.Count, lines.Length);
        Assert.Contains("aes-256-gcm 32 32", lines);
    }

    [Fact]
    public async Task GenKey_PrintsBase64OfKeyLength()
    {
        var output = new StringWriter();
        Assert.Equal(0, await Program.RunAsync(["genkey", "-m", "aes-128-gcm"], output, new StringWriter(), CancellationToken.None));
        Assert.Equal(16, Convert.FromBase64String(output.ToString().Trim()).Length);
    }

    [Fact]
    public async Task UnknownMethod_ExitsTwoWithOneLine()
    {
        var error = new StringWriter();
        Assert.Equal(2, await Program.RunAsync(["genkey", "-m", "aes-256-gmc"], new StringWriter(), error, CancellationToken.None));
        var text = error.ToString().TrimEnd();
        Assert.DoesNotContain('\n', text);
        Assert.Contains("aes-256-gcm", text);
    }

    [Theory]
    [InlineData("server", """{ "sever_port": 8388, "password": "pw" }""", "sever_port", "server_port", "-p: missing server port")]
    [InlineData("local", """{ "server": "127.0.0.1", "server_port": 8388, "password": "pw", "local_prot": 1080 }""", "local_prot", "local_port", "-l: missing local port")]
    [InlineData("tunnel", """{ "server": "127.0.0.1", "server_port": 8388, "local_port": 1080, "password": "pw", "tunnel_adress": "1.1.1.1:53" }""", "tunnel_adress", "tunnel_address", "-L: missing tunnel destination")]
    [InlineData("local", """{ "server": "127.0.0.1", "server_port": 8388, "local_port": 1080, "pasword": "pw" }""", "pasword", "password", "-k: missing password")]
    public async Task ARequiredKeyMisspelt_TheRefusalComesAfterTheLineNamingTheTypo(string verb, string config, string typo, string meant, string refusal)
    {
        // ss-libev users misspell keys; the missing-key refusal alone never said that the misspelt one was not read.
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, config);
            var error = new StringWriter();
            var output = new StringWriter();
            Assert.Equal(2, await Program.RunAsync([verb, "-c", file], output, error, CancellationToken.None));
            var lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.Equal(2, lines.Length);
            Assert.Equal($"shadowsocks: {typo}: in {file}, not a setting this program knows (ignored); did you mean \"{meant}\"?", lines[0]);
            Assert.StartsWith($"shadowsocks: {refusal}", lines[1]);
            Assert.Empty(output.ToString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("server", "-s", "127.0.0.1", "-p", "1", "-k", "x")]
    [InlineData("demo", "--check")] // it threw out of the demo too, after the relays had passed
    public async Task TracesIntoAFile_ExitsTwoWithOneLine_BeforeAnyPortOpens(params string[] verbAndFlags)
    {
        // A trace folder that is a file threw out of the verb: a stack trace and exit code 134.
        var notAFolder = Path.GetTempFileName();
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            Assert.Equal(2, await Program.RunAsync([.. verbAndFlags, "--traces", notAFolder], output, error, CancellationToken.None));
            var text = error.ToString().TrimEnd();
            Assert.StartsWith($"shadowsocks: --traces: cannot write a trace file in {notAFolder}:", text);
            Assert.DoesNotContain('\n', text);
            Assert.DoesNotContain("listening", output.ToString());
            Assert.DoesNotContain("demo:", output.ToString());
        }
        finally
        {
            File.Delete(notAFolder);
        }
    }
}
