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

    [Fact]
    public async Task TracesIntoAFile_ExitsTwoWithOneLine_BeforeAnyPortOpens()
    {
        // A trace folder that is a file threw out of the verb: a stack trace and exit code 134.
        var notAFolder = Path.GetTempFileName();
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            Assert.Equal(2, await Program.RunAsync(
                ["server", "-s", "127.0.0.1", "-p", "1", "-k", "x", "--traces", notAFolder], output, error, CancellationToken.None));
            var text = error.ToString().TrimEnd();
            Assert.StartsWith($"shadowsocks: traces: cannot write a trace file in {notAFolder}:", text);
            Assert.DoesNotContain('\n', text);
            Assert.DoesNotContain("listening", output.ToString());
        }
        finally
        {
            File.Delete(notAFolder);
        }
    }
}
