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
    /// The TCP connections and UDP associations at once that fit <paramref name="openFiles"/>, at most
    /// <paramref name="maxConnections"/> and <paramref name="udpAssociations"/>, and a line for the user when a value
    /// given (<paramref name="explicitlySet"/>) does not fit. UDP's default share is cut to a quarter of what is left
    /// after the reserve, so that under a limit of a few thousand (systemd's <c>LimitNOFILE=4096</c>) its default 4,096
    /// associations do not leave TCP almost nothing; an <c>udp_max_associations</c> given is kept and taken first. The
    /// default <c>max_connections</c> is fitted quietly, unless the limit leaves no more than <see cref="Minimum"/>: a
    /// server that serves 16 connections at once and lets the rest wait says so. Without <paramref name="tcp"/> (a server
    /// or tunnel with <c>-U</c>) UDP's default may take the whole budget, and <c>max_connections</c> is left alone. A server
    /// on several <paramref name="addresses"/> has an accept loop and a UDP relay on each, each with these limits: the
    /// budget is shared among them.
    /// </summary>
    public static (int MaxConnections, int UdpAssociations, string? Warning) Fit(
        int maxConnections, ulong openFiles, int udpAssociations, bool explicitlySet, bool udpExplicitlySet = false, bool tcp = true, int addresses = 1)
    {
        var budget = ((long)Math.Min(openFiles, int.MaxValue) - Reserve) / Math.Max(1, addresses);
        var udpShare = udpExplicitlySet ? udpAssociations : (int)Math.Min(udpAssociations, Math.Max(Minimum, tcp ? budget / 4 : budget));
        if (!tcp)
        {
            return (maxConnections, udpShare, null); // no TCP relay: its connections hold nothing
        }

        var spare = budget - udpShare;
        var fits = (int)Math.Max(Minimum, spare / 2);
        if (fits >= maxConnections)
        {
            return (maxConnections, udpShare, null);
        }

        if (!explicitlySet && fits > Minimum)
        {
            return (fits, udpShare, null);
        }

        var needed = (Math.Max(1, addresses) * ((2L * maxConnections) + udpAssociations)) + Reserve;
        var udp = udpShare > 0 ? $"; udp_max_associations {udpShare} holds {udpShare} of them" : "";
        return (fits, udpShare, $"max_connections {maxConnections}{(explicitlySet ? "" : " (the default)")} needs about {needed} open files but the limit is {openFiles}{udp}: at most {fits} connections at once{(addresses > 1 ? $" on each of its {addresses} addresses" : "")}, the rest wait (raise the limit with -n / \"nofile\", or systemd's LimitNOFILE=)");
    }
}
