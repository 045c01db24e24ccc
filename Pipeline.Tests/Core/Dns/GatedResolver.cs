using System.Net;
using Shadowsocks.Pipeline.Core.Dns;

namespace Shadowsocks.Pipeline.Tests.Core.Dns;

/// <summary>
/// Answers loopback for every name once opened; until then each lookup waits. Counts lookups in flight. A name in
/// <see cref="Known"/> is answered at once, as a cached one is.
/// </summary>
internal sealed class GatedResolver : IDnsResolver
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _calls;
    private int _inFlight;
    private int _maxInFlight;

    public int Calls => Volatile.Read(ref _calls);

    public int InFlight => Volatile.Read(ref _inFlight);

    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    public string? Known { get; init; }

    public void Open() => _open.TrySetResult();

    public bool TryResolveAtOnce(string host, out IPAddress[] addresses)
    {
        addresses = host == Known ? [IPAddress.Loopback] : [];
        return host == Known;
    }

    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        var now = Interlocked.Increment(ref _inFlight);
        int seen;
        while (now > (seen = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, seen) != seen)
        {
        }

        try
        {
            await _open.Task.WaitAsync(cancellationToken);
            return [IPAddress.Loopback];
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }
}
