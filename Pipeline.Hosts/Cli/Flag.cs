namespace Shadowsocks.Pipeline.Hosts.Cli;

/// <summary>
/// One command-line flag: its long name and shadowsocks-libev's short alias, the configuration key it sets (the
/// config.json name; <c>null</c> for flags read directly, such as <c>-c</c>), and for a switch the value it sets.
/// </summary>
/// <param name="Name">The long name, e.g. <c>--server-port</c>.</param>
/// <param name="Alias">The short flag, e.g. <c>-p</c>, or <c>null</c>.</param>
/// <param name="Key">The configuration key, e.g. <c>server_port</c>.</param>
/// <param name="HelpName">The value's placeholder in --help; <c>null</c> for a switch.</param>
/// <param name="Help">One line for --help.</param>
/// <param name="SwitchValue">For a switch with a key, the value it sets (e.g. <c>-u</c> sets mode to tcp_and_udp).</param>
/// <param name="Hidden">Accepted for compatibility with ss-libev's command line, not shown in --help.</param>
/// <param name="OnlyFor">The verbs whose --help shows it (null: every verb that takes it). The others still accept it, so
/// one command line or config file serves them all.</param>
internal sealed record Flag(
    string Name, string? Alias, string? Key, string? HelpName, string Help, string? SwitchValue = null, bool Hidden = false, string[]? OnlyFor = null)
{
    /// <summary>Whether <paramref name="verb"/>'s --help lists it.</summary>
    public bool ShownFor(string verb) => !Hidden && (OnlyFor is null || OnlyFor.Contains(verb));

    public bool IsSwitch => HelpName is null;

    /// <summary>How an error names this flag: the short alias users of ss-libev know, else the long name.</summary>
    public string Display => Alias ?? Name;
}
