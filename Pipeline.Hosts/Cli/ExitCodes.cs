namespace Shadowsocks.Pipeline.Hosts.Cli;

/// <summary>Process exit codes.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>A runtime failure: the port is in use, the network failed.</summary>
    public const int RuntimeFailure = 1;

    /// <summary>The command line or the configuration is wrong.</summary>
    public const int Usage = 2;
}
