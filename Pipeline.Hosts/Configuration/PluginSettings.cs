namespace Shadowsocks.Pipeline.Hosts.Configuration;

/// <summary>
/// A SIP003 plugin (<c>plugin</c>, <c>plugin_opts</c>): the program as given, the executable it was found at, and the
/// options handed to it in <c>SS_PLUGIN_OPTIONS</c> (as written: SIP003 leaves their escaping to the user).
/// </summary>
internal sealed record PluginSettings(string Name, string Executable, string? Options)
{
    /// <summary>
    /// The executable for <paramref name="program"/>: a path (anything with a '/') as is, a bare name looked up in the
    /// directories of <paramref name="searchPath"/> (PATH) as a shell would. Null when there is no such executable file.
    /// </summary>
    public static string? Locate(string program, string? searchPath)
    {
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return IsExecutable(program) ? Path.GetFullPath(program) : null;
        }

        foreach (var directory in (searchPath ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, program);
            if (IsExecutable(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static bool IsExecutable(string path) =>
        File.Exists(path)
        && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0);
}
