using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// <c>mptcp</c>: the Shadowsocks hop over Multipath TCP. The kernel's MPTcpExt counters show the connections really
/// were Multipath (a listener that answered an MP_CAPABLE SYN); against a plain-TCP ss-server it falls back. One class,
/// so these run one after another and no other test moves the counters.
/// </summary>
public sealed class MultipathTests
{
    private const string Password = "multipath";
    private const int Connections = 3;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task OurLocal_ToOurServer_OverMultipathTcp_EchoesIntact()
    {
        RequireMultipath();
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var chain = RelayChain.Start("aes-256-gcm", Password, tune: static o => o with { Mptcp = true });

        var before = NetstatCounters.Read("MPTcpExt", "MPCapableSYNRX");
        await Transfer.EchoThroughSocks5Async(chain.Local.LocalEndPoint, destination.EndPoint.Port, Connections, 256 * 1024, cancel.Token);
        var accepted = NetstatCounters.Read("MPTcpExt", "MPCapableSYNRX") - before;
        Assert.True(accepted >= Connections, $"the server's listener took {accepted} Multipath connections of {Connections}");
    }

    [Fact]
    public async Task OurLocal_ToAPlainTcpLibevServer_FallsBackToTcp()
    {
        RequireMultipath();
        using var cancel = new CancellationTokenSource(s_timeout);
        await using var destination = new EchoDestination();
        await using var server = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", "aes-256-gcm", "-t", "60");
        await using var local = new LocalTcpRelay(
            RelayChain.Options("aes-256-gcm", Password, Loopback(), server.EndPoint) with { Mptcp = true }, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();

        var before = NetstatCounters.Read("MPTcpExt", "MPCapableSYNTX");
        await Transfer.EchoThroughSocks5Async(local.LocalEndPoint, destination.EndPoint.Port, Connections, 256 * 1024, cancel.Token, halfClose: false);
        Assert.True(NetstatCounters.Read("MPTcpExt", "MPCapableSYNTX") - before >= Connections, "the local's SYNs did not offer Multipath TCP");
    }

    internal static void RequireMultipath()
    {
        var enabled = File.Exists("/proc/sys/net/mptcp/enabled") ? File.ReadAllText("/proc/sys/net/mptcp/enabled").Trim() : "missing";
        Assert.True(enabled == "1", $"net.mptcp.enabled is {enabled}: the Multipath TCP tests need Linux 5.6+ with it on (sysctl -w net.mptcp.enabled=1)");
    }

    private static IPEndPoint Loopback() => new(IPAddress.Loopback, 0);
}
