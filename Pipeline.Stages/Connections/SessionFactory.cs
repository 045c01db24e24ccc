using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>Wraps an accepted socket in a session with its root span.</summary>
internal static class SessionFactory
{
    public static TcpSession Accept(Socket client, string role, string method)
    {
        var span = PipelineTelemetry.StartRoot($"{role} connection", ActivityKind.Server);
        if (span is not null)
        {
            span.SetTag(TagNames.NetworkTransport, "tcp");
            span.SetTag(TagNames.Role, role);
            span.SetTag(TagNames.Method, method);
            if (client.RemoteEndPoint is IPEndPoint peer)
            {
                span.SetTag(TagNames.NetworkPeerAddress, DualStack.Unmapped(peer.Address).ToString()); // 127.0.0.1, not ::ffff:127.0.0.1 on a dual-stack listener
                span.SetTag(TagNames.NetworkPeerPort, peer.Port);
            }
        }

        return new TcpSession(client, span);
    }
}
