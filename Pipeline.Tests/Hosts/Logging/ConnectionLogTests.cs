using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Hosts.Logging;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>The <c>-v</c> line of a connection, read off its spans.</summary>
public sealed class ConnectionLogTests
{
    [Fact]
    public void AMultiUserServersConnection_NamesItsUser_AndOthersNone()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"10.1.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}";

        Finish(peer, 40001, "alice");
        Finish(peer, 40002, null);

        var mine = logger.Lines.Where(l => l.Contains(peer, StringComparison.Ordinal)).ToList();
        Assert.Equal(2, mine.Count);
        Assert.Contains($"{peer}:40001 (user alice) -> example.com:443 closed after", mine[0]);
        Assert.Contains($"{peer}:40002 -> example.com:443 closed after", mine[1]);
        Assert.DoesNotContain("user", mine[1]);
    }

    [Fact]
    public void AConnectionOneSideReset_SaysWhichSide_NotThatADirectionFailed()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"10.2.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}";
        using (var span = PipelineTelemetry.StartRoot("server connection", ActivityKind.Server))
        {
            Assert.NotNull(span);
            span.SetTag(TagNames.NetworkPeerAddress, peer);
            span.SetTag(TagNames.NetworkPeerPort, 40003);
            span.SetTag(TagNames.ServerAddress, "example.com");
            span.SetTag(TagNames.ServerPort, 443);
            using (var direction = PipelineTelemetry.Source.StartActivity("downstream", ActivityKind.Internal, span.Context))
            {
                direction?.SetStatus(ActivityStatusCode.Error, "SocketError");
            }

            span.SetTag(TagNames.ResetBy, "remote"); // as TcpSession.Broken marks it
            span.SetStatus(ActivityStatusCode.Error, "reset by the remote");
        }

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Matches("-> example.com:443 failed after [0-9]+ ms: reset by the remote$", line);
    }

    [Fact]
    public void IPv6Addresses_AreWrittenInBrackets()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"fd00::{Random.Shared.Next(1, 0xFFFF):x}";
        using (var span = PipelineTelemetry.StartRoot("server connection", ActivityKind.Server))
        {
            Assert.NotNull(span);
            span.SetTag(TagNames.NetworkPeerAddress, peer);
            span.SetTag(TagNames.NetworkPeerPort, 40005);
            span.SetTag(TagNames.ServerAddress, "2001:db8::1");
            span.SetTag(TagNames.ServerPort, 443);
        }

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Contains($"[{peer}]:40005 -> [2001:db8::1]:443 closed after", line);
    }

    [Fact]
    public void ANameAlreadyInBrackets_IsNotBracketedAgain()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"10.3.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}";
        using (var span = PipelineTelemetry.StartRoot("server connection", ActivityKind.Server))
        {
            Assert.NotNull(span);
            span.SetTag(TagNames.NetworkPeerAddress, peer);
            span.SetTag(TagNames.NetworkPeerPort, 40006);
            span.SetTag(TagNames.ServerAddress, "[::1]"); // a client sent the name "[::1]" (ATYP 3)
            span.SetTag(TagNames.ServerPort, 7001);
        }

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Contains($"{peer}:40006 -> [::1]:7001 closed after", line);
    }

    [Fact]
    public void AConnectionThatNamedNoDestination_SaysSo()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"10.3.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}";
        using (var span = PipelineTelemetry.StartRoot("server connection", ActivityKind.Server))
        {
            Assert.NotNull(span);
            span.SetTag(TagNames.NetworkPeerAddress, peer);
            span.SetTag(TagNames.NetworkPeerPort, 40004);
            span.SetStatus(ActivityStatusCode.Error, "authentication failed"); // a drained probe: no header, no destination
        }

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Contains($"{peer}:40004 -> (no destination) failed after", line);
    }

    [Fact]
    public void AUdpAssociation_CountsItsDatagrams_NotBytes()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"10.4.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}";
        using (var span = PipelineTelemetry.StartRoot("udp.association", ActivityKind.Server))
        {
            Assert.NotNull(span);
            span.SetTag(TagNames.NetworkPeerAddress, peer);
            span.SetTag(TagNames.NetworkPeerPort, 40005);
            span.SetTag(TagNames.UdpDatagramsOut, 7L); // as the association's entry sets them when it ends
            span.SetTag(TagNames.UdpDatagramsBack, 5L);
        }

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Matches($"udp.association {peer}:40005 closed after [0-9]+ ms, 7 datagrams out, 5 back$", line);
    }

    private static void Finish(string peer, int port, string? user)
    {
        using var span = PipelineTelemetry.StartRoot("server connection", ActivityKind.Server);
        Assert.NotNull(span); // the log's listener samples every connection
        span.SetTag(TagNames.NetworkPeerAddress, peer);
        span.SetTag(TagNames.NetworkPeerPort, port);
        span.SetTag(TagNames.ServerAddress, "example.com");
        span.SetTag(TagNames.ServerPort, 443);
        if (user is not null)
        {
            span.SetTag(TagNames.UserName, user);
        }
    }
}
