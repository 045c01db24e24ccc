namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// Whether the kernel lets <c>fast_open</c> work: <c>net.ipv4.tcp_fastopen</c> is a bit mask, 1 for sending data in the
/// SYN (the local and the tunnel), 2 for accepting it (the server). Debian's default, 1, leaves a server's TCP Fast Open off.
/// </summary>
internal static class FastOpenSupport
{
    private const string Sysctl = "net.ipv4.tcp_fastopen";

    /// <summary>One line for the user when <paramref name="sysctl"/> (the file's text, null if unreadable) keeps <paramref name="verb"/>'s side off; otherwise null.</summary>
    public static string? Warning(string verb, string? sysctl)
    {
        var needed = verb == "server" ? 2 : 1;
        var side = verb == "server" ? "accepting data in the SYN" : "sending data in the SYN";
        if (!int.TryParse(sysctl?.Trim(), out var mask))
        {
            return $"fast_open: cannot read {KernelSetting.PathOf(Sysctl)}; TCP Fast Open ({side}) may be off";
        }

        return (mask & needed) != 0
            ? null
            : $"fast_open: net.ipv4.tcp_fastopen is {mask}, which leaves {side} off; connections go without it. Fix: sysctl -w net.ipv4.tcp_fastopen={mask | 3}";
    }

    /// <summary>The warning for this machine (see <see cref="Warning"/>).</summary>
    public static string? Check(string verb) => Warning(verb, KernelSetting.Read(Sysctl));
}
