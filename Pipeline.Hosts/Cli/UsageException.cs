namespace Shadowsocks.Pipeline.Hosts.Cli;

/// <summary>A usage or configuration error: one line naming the flag or field and the fix; exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
