using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// One client's association: the outbound socket its datagrams leave by, the loop that receives the replies on it,
/// and the association's root span. Disposing it (expiry, eviction, shutdown) stops the receiving and closes the socket.
/// </summary>
internal sealed class UdpNatEntry : IDisposable
{
    private long _datagramsOut;
    private long _datagramsBack;
    private int _disposed;

    public UdpNatEntry(Socket outbound, Activity? span)
    {
        Outbound = outbound;
        Span = span;
        PipelineTelemetry.UdpAssociations.Add(1);
    }

    public Socket Outbound { get; }

    public Activity? Span { get; }

    /// <summary>The replies' receiving on the relay's event loop; stopped before the socket closes.</summary>
    public IDisposable? Receiving { get; set; }

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

        Receiving?.Dispose();
        Outbound.Dispose();
        PipelineTelemetry.UdpAssociations.Add(-1);
        if (Span is not null)
        {
            Span.SetTag(TagNames.UdpDatagramsOut, Interlocked.Read(ref _datagramsOut));
            Span.SetTag(TagNames.UdpDatagramsBack, Interlocked.Read(ref _datagramsBack));
            Span.Dispose();
        }
    }
}
