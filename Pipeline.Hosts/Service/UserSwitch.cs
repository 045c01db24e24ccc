using System.Globalization;
using System.Runtime.InteropServices;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// <c>-a USER</c> (<c>user</c>): started as root to bind its ports, the program goes on as USER (its primary group,
/// no supplementary groups), as ss-libev's <c>-a</c> does. glibc applies the change to every thread of the process.
/// </summary>
internal static unsafe partial class UserSwitch
{
    /// <summary>Whether <see cref="To"/> can work, checked before any port is opened: null if so, otherwise why not.</summary>
    public static string? Check(string user) => Refusal(user, out _, out _);

    /// <summary>Switches to <paramref name="user"/> (a name or a numeric uid). Null when done (or already that user); otherwise why not.</summary>
    public static string? To(string user)
    {
        if (Refusal(user, out var uid, out var gid) is { } refused)
        {
            return refused;
        }

        if (GetEffectiveUserId() == uid)
        {
            return null;
        }

        if (SetGroups(1, &gid) != 0 || SetGroupId(gid) != 0 || SetUserId(uid) != 0)
        {
            return $"cannot switch to '{user}': errno {Marshal.GetLastPInvokeError()}";
        }

        return null;
    }

    /// <summary>The user's ids, and why switching to them cannot work (null when it can).</summary>
    private static string? Refusal(string user, out uint uid, out uint gid)
    {
        if (!Lookup(user, out uid, out gid))
        {
            return $"no user '{user}' on this machine";
        }

        var current = GetEffectiveUserId();
        return current != 0 && current != uid ? $"switching to '{user}' needs root (running as uid {current}); or use systemd's User=" : null;
    }

    private static bool Lookup(string user, out uint uid, out uint gid)
    {
        var entry = GetPasswordEntry(user);
        if (entry == IntPtr.Zero && uint.TryParse(user, NumberStyles.None, CultureInfo.InvariantCulture, out var numeric))
        {
            entry = GetPasswordEntryById(numeric);
        }

        if (entry == IntPtr.Zero)
        {
            uid = gid = 0;
            return false;
        }

        // struct passwd on Linux x86-64 / arm64: pw_name, pw_passwd (pointers), then pw_uid and pw_gid (32-bit).
        uid = (uint)Marshal.ReadInt32(entry, 2 * IntPtr.Size);
        gid = (uint)Marshal.ReadInt32(entry, (2 * IntPtr.Size) + sizeof(uint));
        return true;
    }

    [LibraryImport("libc", EntryPoint = "getpwnam", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetPasswordEntry(string name);

    [LibraryImport("libc", EntryPoint = "getpwuid")]
    private static partial IntPtr GetPasswordEntryById(uint uid);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "setgroups", SetLastError = true)]
    private static partial int SetGroups(nuint count, uint* groups);

    [LibraryImport("libc", EntryPoint = "setgid", SetLastError = true)]
    private static partial int SetGroupId(uint gid);

    [LibraryImport("libc", EntryPoint = "setuid", SetLastError = true)]
    private static partial int SetUserId(uint uid);
}
