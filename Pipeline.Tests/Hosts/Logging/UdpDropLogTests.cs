using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Hosts.Logging;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Loopback;
using Shadowsocks.Pipeline.Tests.Stages.Relay;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>
/// <c>-v</c>: a dropped datagram is said once per reason, then at most one line a minute per reason with the count
/// (before, <c>-v</c> printed nothing for it: only the metric <c>pipeline.udp.dropped</c> knew).
/// </summary>
public sealed class UdpDropLogTests
{
    [Fact]
    public void EachReason_IsOneLineAtOnce_LaterDropsAreCountedIntoOneLineAMinute()
    {
        var clock = new ManualTimeProvider();
        var logger = new LinesLogger(LogLevel.Debug);
        using var log = new UdpDropLog(logger, clock);
        // The listener hears the whole process's counter (other tests drop datagrams too): reasons of this test's own.
        var fragments = $"fragments {Guid.NewGuid():N}";
        var truncated = $"truncated {Guid.NewGuid():N}";
        List<string> Of(string reason) => [.. logger.Lines.Where(l => l.Contains(reason, StringComparison.Ordinal))];

        for (var i = 0; i < 1000; i++)
        {
            PipelineTelemetry.UdpDropped.Add(1, new KeyValuePair<string, object?>(TagNames.Reason, fragments));
        }

        PipelineTelemetry.UdpDropped.Add(1, new KeyValuePair<string, object?>(TagNames.Reason, truncated));
        Assert.Equal([$"udp: a datagram was dropped: {fragments}; later drops for this reason: one line a minute at most (metric pipeline.udp.dropped)"], Of(fragments));
        Assert.Single(Of(truncated));

        clock.Advance(FailureWarning.Interval - TimeSpan.FromSeconds(1));
        log.Count(1, fragments);
        Assert.Single(Of(fragments));

        clock.Advance(TimeSpan.FromSeconds(2));
        log.Count(1, fragments);
        Assert.Equal(2, Of(fragments).Count);
        Assert.Equal($"udp: 1001 more datagrams were dropped since the last such line: {fragments}", Of(fragments)[1]);
        Assert.Single(Of(truncated));
    }

    [Fact]
    public async Task VerboseLocal_SaysWhyItDropsDatagrams_OncePerReason_AndRelaysTheRest()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var environment = new Dictionary<string, string>();
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            "server", "-u", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", "drops", "-m", "chacha20-ietf-poly1305", "--forbidden-ip", "");
        using var _ = server;
        var (local, localAt) = await HostProcess.StartAsync(environment,
            "local", "-u", "-v", "-s", "127.0.0.1", "-p", Port(serverAt), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", "drops", "-m", "chacha20-ietf-poly1305");
        using var __ = local;
        using var echo = new UdpEchoDestination(IPAddress.Loopback);
        using var association = await Socks5UdpTestClient.AssociateAsync(localAt, cancel.Token);

        var fragment = Socks5UdpTestClient.Request("127.0.0.1", echo.EndPoint.Port, "fragment"u8);
        fragment[2] = 1; // FRAG: RFC 1928 § 7 lets a relay that does not reassemble drop it
        for (var i = 0; i < 50; i++)
        {
            await association.SendRawAsync(fragment, cancel.Token);
        }

        await association.SendRawAsync([0, 0, 0, 1, 127, 0], cancel.Token); // cut short in the address
        // Received by the same loop after those, so they have been dropped (and counted) by the time this comes back.
        await association.SendAsync("127.0.0.1", echo.EndPoint.Port, "whole"u8, cancel.Token);
        Assert.Equal("whole", Encoding.ASCII.GetString(await association.ReceiveAsync(cancel.Token)));

        Assert.True(await local.WaitForOutputAsync("udp: a datagram was dropped: malformed socks5 header", TimeSpan.FromSeconds(30)), local.Output);
        Assert.Single(Regex.Matches(local.Output, "udp: a datagram was dropped: socks5 fragment; later drops for this reason: one line a minute at most"));
        Assert.DoesNotMatch("more datagrams? w[a-z]+ dropped", local.Output);
    }
}
