namespace Shadowsocks.Pipeline.Tests.Loopback;

/// <summary>
/// The kernel's TCP Fast Open counters (<c>/proc/net/netstat</c>, TcpExt): how many connections sent data in their SYN
/// (<c>TCPFastOpenActive</c>) and how many listeners accepted such data (<c>TCPFastOpenPassive</c>). They count for the
/// whole network namespace, so a test compares them before and after its own connections.
/// </summary>
internal sealed record FastOpenCounters(long Active, long Passive)
{
    public static FastOpenCounters Read() =>
        new(NetstatCounters.Read("TcpExt", "TCPFastOpenActive"), NetstatCounters.Read("TcpExt", "TCPFastOpenPassive"));

    /// <summary>Fails the test, naming the fix, when the kernel would not let a listener accept data in a SYN.</summary>
    public static void RequireBothSides()
    {
        var mask = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/tcp_fastopen").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True((mask & 3) == 3,
            $"net.ipv4.tcp_fastopen is {mask}: the TCP Fast Open tests need both sides on. Fix: sysctl -w net.ipv4.tcp_fastopen=3 (.ci/run does)");
    }
}
