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

        Finish(peer, 40001, more: static span => span.SetTag(TagNames.UserName, "alice"));
        Finish(peer, 40002);

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
        Finish(peer, 40003, more: static span =>
        {
            using (var direction = PipelineTelemetry.Source.StartActivity("downstream", ActivityKind.Internal, span.Context))
            {
                direction?.SetStatus(ActivityStatusCode.Error, "SocketError");
            }

            span.SetTag(TagNames.ResetBy, "remote"); // as TcpSession.Broken marks it
            span.SetStatus(ActivityStatusCode.Error, "reset by the remote");
        });

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Matches("-> example.com:443 failed after [0-9]+ ms: reset by the remote$", line);
    }

    [Fact]
    public void IPv6Addresses_AreWrittenInBrackets()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"fd00::{Random.Shared.Next(1, 0xFFFF):x}";
        Finish(peer, 40005, "2001:db8::1");

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Contains($"[{peer}]:40005 -> [2001:db8::1]:443 closed after", line);
    }

    [Fact]
    public void ANameAlreadyInBrackets_IsNotBracketedAgain()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"10.3.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}";
        Finish(peer, 40006, "[::1]", 7001); // a client sent the name "[::1]" (ATYP 3)

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Contains($"{peer}:40006 -> [::1]:7001 closed after", line);
    }

    [Fact]
    public void AConnectionThatNamedNoDestination_SaysSo()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"10.3.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}";
        Finish(peer, 40004, host: null, more: static span => span.SetStatus(ActivityStatusCode.Error, "authentication failed")); // a drained probe: no header, no destination

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Contains($"{peer}:40004 -> (no destination) failed after", line);
    }

    [Fact]
    public void AUdpAssociation_CountsItsDatagrams_NotBytes()
    {
        var logger = new LinesLogger();
        using var log = new ConnectionLog(logger);
        var peer = $"10.4.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}";
        Finish(peer, 40005, host: null, name: "udp.association", more: static span =>
        {
            span.SetTag(TagNames.UdpDatagramsOut, 7L); // as the association's entry sets them when it ends
            span.SetTag(TagNames.UdpDatagramsBack, 5L);
        });

        var line = Assert.Single(logger.Lines, l => l.Contains(peer, StringComparison.Ordinal));
        Assert.Matches($"udp.association {peer}:40005 closed after [0-9]+ ms, 7 datagrams out, 5 back$", line);
    }

    /// <summary>One connection's root span, ended: from <paramref name="peer"/>, to <paramref name="host"/> (none when null), with <paramref name="more"/> done to it before it ends.</summary>
    private static void Finish(
        string peer, int port, string? host = "example.com", int destinationPort = 443, Action<Activity>? more = null, string name = "server connection")
    {
        using var span = PipelineTelemetry.StartRoot(name, ActivityKind.Server);
        Assert.NotNull(span); // the log's listener samples every connection
        span.SetTag(TagNames.NetworkPeerAddress, peer);
        span.SetTag(TagNames.NetworkPeerPort, port);
        if (host is not null)
        {
            span.SetTag(TagNames.ServerAddress, host);
            span.SetTag(TagNames.ServerPort, destinationPort);
        }

        more?.Invoke(span);
    }
}
