using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>Turns a host name into addresses. Failures are an empty result, not exceptions.</summary>
internal interface IDnsResolver
{
    ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken);

    /// <summary>
    /// The addresses when they are known without asking anyone (an IP literal, the hosts file, the cache): the resolve
    /// stages then take them without waiting for a lookup slot. False when only <see cref="ResolveAsync"/> can tell.
    /// </summary>
    bool TryResolveAtOnce(string host, out IPAddress[] addresses)
    {
        addresses = [];
        return false;
    }

    /// <summary>
    /// Why the latest lookup of <paramref name="host"/> found no address, in a few words for a log line (<c>no such
    /// name (NXDOMAIN from 127.0.0.1:53)</c>, <c>no answer from 10.0.0.1:53</c>); null when the resolver cannot say.
    /// </summary>
    string? FailureReason(string host) => null;
}
