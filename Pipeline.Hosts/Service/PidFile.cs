using System.Diagnostics;
using System.Globalization;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// <c>-f FILE</c>'s pid file, as ss-libev keeps it: the pid in decimal and a newline. A file naming a live process
/// means the service is running (refuse to start twice); one naming a dead process is stale and replaced.
/// </summary>
internal static class PidFile
{
    /// <summary>The pid the file names; <c>null</c> when it is missing, unreadable or not a pid.</summary>
    public static int? Read(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The live process the file names, if any; a stale or unreadable file counts as none.</summary>
    public static int? LiveOwner(string path)
    {
        if (Read(path) is not { } pid || pid == Environment.ProcessId)
        {
            return null;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited ? null : pid;
        }
        catch (ArgumentException)
        {
            return null; // no such process: stale
        }
    }

    public static void Write(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}");
        File.WriteAllText(temporary, $"{Environment.ProcessId}\n");
        File.Move(temporary, path, overwrite: true); // whole or not at all: a reader never sees a half-written pid
    }

    /// <summary>Removes the file if it still names this process.</summary>
    public static void Remove(string path)
    {
        if (Read(path) != Environment.ProcessId)
        {
            return; // already gone, or not ours to remove
        }

        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not ours to remove after all.
        }
    }
}
