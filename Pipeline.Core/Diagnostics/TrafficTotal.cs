namespace Shadowsocks.Pipeline.Core.Diagnostics;

/// <summary>
/// Bytes this process has relayed since it started, every direction, TCP and UDP (each forwarded chunk and datagram
/// as sent): what ss-server reports to ss-manager (<c>--manager-address</c>). One process-wide sum, added to without locks.
/// </summary>
internal static class TrafficTotal
{
    private static long s_bytes;

    public static long Bytes => Interlocked.Read(ref s_bytes);

    public static void Add(long bytes) => Interlocked.Add(ref s_bytes, bytes);
}
