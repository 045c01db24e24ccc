using System.Runtime.InteropServices;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// The process's open-file limit (<c>RLIMIT_NOFILE</c>): every connection holds two descriptors, so the soft limit
/// (1,024 by default on Debian, systemd included) caps a server near 500 connections. At start the soft limit goes up
/// to the hard one, which any process may do (as Go's runtime does); <c>nofile</c> (<c>-n</c>) asks for a number
/// (above the hard limit only with privilege).
/// </summary>
internal static partial class FileLimit
{
    private const int ResourceNofile = 7; // RLIMIT_NOFILE on Linux

    /// <summary>The soft and hard limits now.</summary>
    public static (ulong Soft, ulong Hard) Current()
    {
        if (GetLimit(ResourceNofile, out var limits) != 0)
        {
            throw new IOException($"getrlimit: errno {Marshal.GetLastPInvokeError()}");
        }

        return (limits.Soft, limits.Hard);
    }

    /// <summary>Raises the soft limit to the hard one; returns the soft limit in effect.</summary>
    public static ulong RaiseToHard()
    {
        var (soft, hard) = Current();
        if (soft < hard)
        {
            var wanted = new Limits { Soft = hard, Hard = hard };
            if (SetLimit(ResourceNofile, in wanted) == 0)
            {
                return hard;
            }
        }

        return soft;
    }

    /// <summary>
    /// Sets the soft limit to <paramref name="wanted"/> (and the hard one when it is lower). Null when done; otherwise
    /// the reason, for one line naming the setting.
    /// </summary>
    public static string? Set(ulong wanted)
    {
        var (_, hard) = Current();
        var limits = new Limits { Soft = wanted, Hard = Math.Max(hard, wanted) };
        if (SetLimit(ResourceNofile, in limits) == 0)
        {
            return null;
        }

        var errno = Marshal.GetLastPInvokeError();
        return errno == 1 // EPERM: above the hard limit needs privilege, and never above fs.nr_open
            ? $"the hard limit is {hard}; above it needs root (or systemd's LimitNOFILE={wanted}) and stays within fs.nr_open ({KernelSetting.Read("fs.nr_open") ?? "unknown"})"
            : $"setrlimit failed (errno {errno})";
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetLimit(int resource, out Limits limits);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetLimit(int resource, in Limits limits);

    [StructLayout(LayoutKind.Sequential)]
    private struct Limits
    {
        public ulong Soft;
        public ulong Hard;
    }
}
