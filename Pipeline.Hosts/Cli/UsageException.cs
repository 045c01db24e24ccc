namespace Shadowsocks.Pipeline.Hosts.Cli;

/// <summary>A usage or configuration error: one line naming the flag or field and the fix; exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message)
{
    /// <summary>
    /// Lines about the settings found before the error (a config key not read, such as <c>sever_port</c>), said before
    /// it: the misspelt key is often why a required one is missing.
    /// </summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}
