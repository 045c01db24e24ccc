namespace Shadowsocks.Pipeline.Core.Diagnostics;

/// <summary>
/// The <see cref="TagNames.NetworkTransport"/> tag of a measurement (<c>tcp</c> or <c>udp</c>), made once: adding it
/// to an instrument allocates nothing.
/// </summary>
internal static class TransportTags
{
    public static readonly KeyValuePair<string, object?> Tcp = new(TagNames.NetworkTransport, "tcp");

    public static readonly KeyValuePair<string, object?> Udp = new(TagNames.NetworkTransport, "udp");
}
