namespace Shadowsocks.Pipeline.Tests.Loopback;

/// <summary>The kernel's protocol counters in <c>/proc/net/netstat</c> (a header line of names, then one of values, per group).</summary>
internal static class NetstatCounters
{
    /// <summary>The counter <paramref name="name"/> of <paramref name="group"/> (<c>TcpExt</c>, <c>MPTcpExt</c>, …).</summary>
    public static long Read(string group, string name)
    {
        var lines = File.ReadAllLines("/proc/net/netstat").Where(l => l.StartsWith(group + ":", StringComparison.Ordinal)).ToArray();
        var names = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var values = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var index = Array.IndexOf(names, name);
        Assert.True(index > 0, $"/proc/net/netstat has no {group} counter {name}");
        return long.Parse(values[index], System.Globalization.CultureInfo.InvariantCulture);
    }
}
