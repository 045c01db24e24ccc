using Shadowsocks.Pipeline.Hosts.Logging;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>Under systemd the error stream's lines start with their priority, however they are written.</summary>
public sealed class JournalPriorityWriterTests
{
    [Fact]
    public void EachLine_StartsWithThePriority_OnceAndOnlyAtItsStart()
    {
        using var inner = new StringWriter();
        using var writer = new JournalPriorityWriter(inner, 3);
        writer.WriteLine("shadowsocks: users not reloaded: no such file");
        writer.Write("shadowsocks: a line ");
        writer.Write("in pieces\nand a second");
        writer.WriteLine();
        writer.WriteLine("<4>already has one");
        Assert.Equal(
            "<3>shadowsocks: users not reloaded: no such file\n<3>shadowsocks: a line in pieces\n<3>and a second\n<4>already has one\n",
            inner.ToString().Replace("\r", "", StringComparison.Ordinal));
    }
}
