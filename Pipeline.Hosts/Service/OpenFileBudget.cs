namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// Fits <c>max_connections</c> to the open-file limit, so that the process never runs out of descriptors: each TCP
/// connection holds two, each UDP association one, and the runtime keeps some for itself (the JIT build about 125 at
/// start; out of descriptors it cannot even compile a method, and the process dies). At the fitted limit new
/// connections wait in the listen backlog, as at <c>max_connections</c>.
/// </summary>
internal static class OpenFileBudget
{
    /// <summary>Descriptors left for the runtime, the listeners, the resolver and the loops.</summary>
    public const int Reserve = 256;

    /// <summary>The fewest connections the budget leaves, however low the limit.</summary>
    public const int Minimum = 16;

    /// <summary>
    /// The connections at once that fit <paramref name="openFiles"/>, at most <paramref name="maxConnections"/>, and a
    /// line for the user when <paramref name="explicitlySet"/> asked for more than fits. The default is fitted quietly,
    /// unless the limit leaves no more than <see cref="Minimum"/> (a limit of a few thousand with UDP's associations
    /// taken first): a server that serves 16 connections at once and lets the rest wait says so.
    /// </summary>
    public static (int MaxConnections, string? Warning) Fit(int maxConnections, ulong openFiles, int udpAssociations, bool explicitlySet)
    {
        var spare = (long)Math.Min(openFiles, int.MaxValue) - Reserve - udpAssociations;
        var fits = (int)Math.Max(Minimum, spare / 2);
        if (fits >= maxConnections)
        {
            return (maxConnections, null);
        }

        if (!explicitlySet && fits > Minimum)
        {
            return (fits, null);
        }

        var needed = (2L * maxConnections) + udpAssociations + Reserve;
        var udp = udpAssociations > 0 ? $"; udp_max_associations {udpAssociations} holds {udpAssociations} of them" : "";
        return (fits, $"max_connections {maxConnections}{(explicitlySet ? "" : " (the default)")} needs about {needed} open files but the limit is {openFiles}{udp}: at most {fits} connections at once, the rest wait (raise the limit with -n / \"nofile\", or systemd's LimitNOFILE=)");
    }
}
