namespace Shadowsocks.Pipeline.Hosts.Verbs;

/// <summary>A server's name found no address at start (the UDP relays need one): when no server has one, the program stops with the first's line.</summary>
internal sealed class ServerLookupException(string host, string reason)
    : Exception($"cannot look up the server {host}: {reason} (hosts file, then -d / \"nameserver\" or /etc/resolv.conf)");
