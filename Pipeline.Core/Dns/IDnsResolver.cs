using System.Net;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>Turns a host name into addresses. Failures are an empty result, not exceptions.</summary>
internal interface IDnsResolver
{
    ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken);
}
