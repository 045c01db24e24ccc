using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// One client's association: the outbound socket its datagrams leave by, the loop that receives the replies on it,
/// and the association's root span. Disposing it (expiry, eviction, shutdown) closes the socket, which ends the loop.
/// </summary>
internal sealed class UdpNatEntry : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private long _datagramsOut;
    private long _datagramsBack;
    private int _disposed;

    public UdpNatEntry(IPEndPoint client, Socket outbound, Activity? span)
    {
        Client = client;
        Outbound = outbound;
        Span = span;
        PipelineTelemetry.UdpAssociations.Add(1);
    }

    public IPEndPoint Client { get; }

    public Socket Outbound { get; }

    public Activity? Span { get; }

    public CancellationToken Stopping => _stop.Token;

    /// <summary>Server: the last name resolved for this client and its address, so a stream of datagrams resolves once.</summary>
    public (string Host, IPAddress Address)? LastResolved { get; set; }

    public void CountOut() => Interlocked.Increment(ref _datagramsOut);

    public void CountBack() => Interlocked.Increment(ref _datagramsBack);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        Outbound.Dispose();
        _stop.Dispose();
        PipelineTelemetry.UdpAssociations.Add(-1);
        if (Span is not null)
        {
            Span.SetTag("pipeline.udp.datagrams_out", Interlocked.Read(ref _datagramsOut));
            Span.SetTag("pipeline.udp.datagrams_back", Interlocked.Read(ref _datagramsBack));
            Span.Dispose();
        }
    }
}
