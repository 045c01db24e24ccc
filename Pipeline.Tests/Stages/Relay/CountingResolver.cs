using System.Net;
using Shadowsocks.Pipeline.Core.Dns;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>The system resolver, counting the lookups asked of it.</summary>
internal sealed class CountingResolver : IDnsResolver
{
    private readonly SystemDnsResolver _inner = new();
    private int _lookups;

    public int Lookups => Volatile.Read(ref _lookups);

    public ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _lookups);
        return _inner.ResolveAsync(host, cancellationToken);
    }
}
