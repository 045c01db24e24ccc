using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Hosts.Logging;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// Lines to a syslog daemon, here a real Unix datagram socket the test binds where <c>/dev/log</c> would be: one
/// datagram per line in syslog(3)'s form; a daemon that is not there costs a dropped line, not a failure, and is found
/// once it appears; one that does not read never blocks the sender.
/// </summary>
public sealed class SyslogTests : IDisposable
{
    private readonly string _path = Path.Combine("/tmp", $"ss-syslog-{Guid.NewGuid():N}.sock"); // short: a socket path has 108 bytes

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void ALine_IsOneDatagram_InSyslogsForm()
    {
        using var daemon = Bind();
        var time = new ManualTimeProvider();
        using var syslog = new Syslog(_path, "shadowsocks", time);

        syslog.Send(Syslog.Informational, "listening on 127.0.0.1:8388");
        syslog.Send(Syslog.Error, "shadowsocks: a refusal");

        var now = time.GetLocalNow();
        var stamp = $"{now.ToString("MMM", CultureInfo.InvariantCulture)} {now.Day,2} {now:HH:mm:ss}";
        Assert.Equal($"<14>{stamp} shadowsocks[{Environment.ProcessId}]: listening on 127.0.0.1:8388", Receive(daemon));
        Assert.Equal($"<11>{stamp} shadowsocks[{Environment.ProcessId}]: shadowsocks: a refusal", Receive(daemon));
        Assert.Equal(0, syslog.Dropped);
    }

    [Fact]
    public void NoDaemon_DropsTheLine_AndLooksAgainLater()
    {
        var time = new ManualTimeProvider();
        using var syslog = new Syslog(_path, "shadowsocks", time);
        syslog.Send(Syslog.Informational, "nobody hears this");
        Assert.Equal(1, syslog.Dropped);

        using var daemon = Bind();
        syslog.Send(Syslog.Informational, "nor this: too soon to look again");
        Assert.Equal(2, syslog.Dropped);
        time.Advance(TimeSpan.FromSeconds(10));
        syslog.Send(Syslog.Informational, "found");

        Assert.EndsWith("]: found", Receive(daemon), StringComparison.Ordinal);
        Assert.Equal(2, syslog.Dropped);
    }

    [Fact]
    public void ADaemonThatDoesNotRead_NeverBlocksTheSender()
    {
        using var daemon = Bind();
        using var syslog = new Syslog(_path, "shadowsocks", new ManualTimeProvider());
        var line = new string('x', 1000);
        for (var i = 0; i < 5000; i++)
        {
            syslog.Send(Syslog.Debug, line); // would hang here if a send waited for room
        }

        Assert.InRange(syslog.Dropped, 1, 4999);
        Assert.EndsWith(line, Receive(daemon), StringComparison.Ordinal);
    }

    [Fact]
    public void TheWriter_PassesEverythingOn_AndSendsEachLine_AtItsLogLevel()
    {
        using var daemon = Bind();
        using var syslog = new Syslog(_path, "shadowsocks", new ManualTimeProvider());
        var inner = new StringWriter();
        using var writer = new SyslogWriter(inner, syslog, Syslog.Informational);

        writer.Write("listening ");
        writer.Write("on 127.0.0.1:1080\nWARN: slow");
        writer.WriteLine();
        writer.WriteLine("DEBUG: local connection 1.2.3.4:80 -> 5.6.7.8:443 closed after 3 ms");
        writer.WriteLine("ERROR: broken");
        writer.Write("CRIT: x\r\n");
        writer.WriteLine();

        Assert.Equal($"listening on 127.0.0.1:1080\nWARN: slow{Environment.NewLine}DEBUG: local connection 1.2.3.4:80 -> 5.6.7.8:443 closed after 3 ms{Environment.NewLine}ERROR: broken{Environment.NewLine}CRIT: x\r\n{Environment.NewLine}", inner.ToString());
        Assert.StartsWith("<14>", Receive(daemon), StringComparison.Ordinal);
        Assert.StartsWith("<12>", Receive(daemon), StringComparison.Ordinal);
        Assert.StartsWith("<15>", Receive(daemon), StringComparison.Ordinal);
        Assert.StartsWith("<11>", Receive(daemon), StringComparison.Ordinal);
        var last = Receive(daemon);
        Assert.StartsWith("<10>", last, StringComparison.Ordinal);
        Assert.EndsWith("]: CRIT: x", last, StringComparison.Ordinal);
        Assert.Equal(0, daemon.Available); // the empty line sent nothing
    }

    [Fact]
    public async Task AStreamSocket_GetsEachLine_EndingInANul_AsGlibcSendsThere()
    {
        using var daemon = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        daemon.Bind(new UnixDomainSocketEndPoint(_path));
        daemon.Listen();
        using var syslog = new Syslog(_path, "shadowsocks", new ManualTimeProvider());

        Assert.True(syslog.Reachable());
        using var accepted = await daemon.AcceptAsync();
        syslog.Send(Syslog.Informational, "one");
        syslog.Send(Syslog.Warning, "two");

        var received = new List<byte>();
        var buffer = new byte[4096];
        accepted.ReceiveTimeout = 5000;
        while (received.Count(b => b == 0) < 2)
        {
            var n = accepted.Receive(buffer);
            Assert.True(n > 0, "the stream ended");
            received.AddRange(buffer.AsSpan(0, n).ToArray());
        }

        var messages = Encoding.UTF8.GetString([.. received]).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, messages.Length);
        Assert.StartsWith("<14>", messages[0], StringComparison.Ordinal);
        Assert.EndsWith("]: one", messages[0], StringComparison.Ordinal);
        Assert.StartsWith("<12>", messages[1], StringComparison.Ordinal);
        Assert.Equal(0, syslog.Dropped);
    }

    [Fact]
    public void AVeryLongLine_IsCut_NotDropped_AndTheNextOneStillGoes()
    {
        using var daemon = Bind();
        using var syslog = new Syslog(_path, "shadowsocks", new ManualTimeProvider());
        var line = new string('é', 300_000); // 600 KB in UTF-8: over any datagram's limit

        syslog.Send(Syslog.Informational, line);
        syslog.Send(Syslog.Informational, "next");

        var cut = ReceiveBytes(daemon);
        Assert.InRange(cut.Length, Syslog.MaxLineBytes - 1, Syslog.MaxLineBytes);
        Assert.EndsWith("éé", Encoding.UTF8.GetString(cut), StringComparison.Ordinal); // cut between characters
        Assert.EndsWith("]: next", Receive(daemon), StringComparison.Ordinal);
        Assert.Equal(0, syslog.Dropped);
    }

    [Fact]
    public void APathThatCannotBeASocket_DropsLines_WithoutThrowing()
    {
        using var syslog = new Syslog(new string('x', 200), "shadowsocks", new ManualTimeProvider()); // over the 108-byte limit
        syslog.Send(Syslog.Error, "nowhere to go");
        Assert.False(syslog.Reachable());
        Assert.Equal(1, syslog.Dropped);
    }

    private Socket Bind()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(_path));
        socket.ReceiveTimeout = 5000;
        return socket;
    }

    private static string Receive(Socket daemon) => Encoding.UTF8.GetString(ReceiveBytes(daemon));

    private static byte[] ReceiveBytes(Socket daemon)
    {
        var buffer = new byte[64 << 10];
        var n = daemon.Receive(buffer);
        return buffer[..n];
    }
}
