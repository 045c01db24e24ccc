namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>A kernel setting as <c>sysctl</c> names it (<c>net.ipv4.tcp_fastopen</c>), read from <c>/proc/sys</c>.</summary>
internal static class KernelSetting
{
    /// <summary>Where the setting lives: <c>/proc/sys/net/ipv4/tcp_fastopen</c> for <c>net.ipv4.tcp_fastopen</c>.</summary>
    public static string PathOf(string name) => "/proc/sys/" + name.Replace('.', '/');

    /// <summary>The setting's text, trimmed; null when it cannot be read (no such setting, no access).</summary>
    public static string? Read(string name)
    {
        try
        {
            return File.ReadAllText(PathOf(name)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
