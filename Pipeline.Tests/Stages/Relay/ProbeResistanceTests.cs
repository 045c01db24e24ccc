using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Xunit.Abstractions;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// Probes modelled on the GFW Report's (IMC 2020): replays of a recorded first packet (identical; bytes 0, 0–7, 16
/// and 62–63 changed), random probes of every length 1–100 and of 221 bytes, and a probe fed one byte at a time.
/// Run against our server and, in the same test, against ss-server as the reference. For every probe: no data back;
/// and for ours, the close (who, FIN or RST, how long after the probe's last byte) is the same for every probe.
/// </summary>
public sealed class ProbeResistanceTests(ITestOutputHelper output)
{
    private const string Method = "aes-256-gcm";
    private const string Password = "probe-password";
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task ProbesGetNoAnswer_AndOneCloseBehaviour()
    {
        await using var destination = new EchoDestination();
        var options = RelayChain.Options(Method, Password, new IPEndPoint(IPAddress.Loopback, 0)) with { IdleTimeout = s_timeout };
        await using var ours = new ServerTcpRelay(options, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        ours.Start();
        await using var libev = await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", Method,
            "-t", ((int)s_timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture));

        var oursResults = await RunSuiteAsync(ours.LocalEndPoint, options, destination);
        var libevResults = await RunSuiteAsync(libev.EndPoint, options, destination);

        foreach (var group in libevResults.GroupBy(r => r.Kind))
        {
            output.WriteLine($"ss-server: {group.Count()} probes {group.Key}, after {group.Min(r => r.After.TotalSeconds):F1}–{group.Max(r => r.After.TotalSeconds):F1} s");
        }

        foreach (var group in oursResults.GroupBy(r => r.Kind))
        {
            output.WriteLine($"ours: {group.Count()} probes {group.Key}, after {group.Min(r => r.After.TotalSeconds):F1}–{group.Max(r => r.After.TotalSeconds):F1} s");
        }

        Assert.All(libevResults, r => Assert.NotEqual("data", r.Kind));
        Assert.All(oursResults, r => Assert.Equal("server FIN", r.Kind));
        Assert.All(oursResults, r => Assert.InRange(r.After, s_timeout - TimeSpan.FromMilliseconds(300), s_timeout + TimeSpan.FromSeconds(1.5)));

        // The two legitimate sends (one per server) reached the destination; no replay did.
        Assert.Equal(2, destination.Accepted);
    }

    private static async Task<List<(string Name, string Kind, TimeSpan After)>> RunSuiteAsync(IPEndPoint server, RelayOptions options, EchoDestination destination)
    {
        // The recording: a legitimate first packet, sent once for real.
        var address = ShadowsocksAddress.FromEndPoint(destination.EndPoint);
        var plain = new byte[AddressHeader.GetSize(address) + 100];
        AddressHeader.Write(address, plain);
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        var recording = new byte[encryptor.MaxOutputSize(plain.Length)];
        recording = recording[..encryptor.Encrypt(plain, recording)];
        using (var original = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await original.ConnectAsync(server);
            await original.SendAsync(recording);
            Assert.True(await original.ReceiveAsync(new byte[200]) > 0);
        }

        var probes = new List<(string Name, byte[] Bytes, bool OneByteAtATime)> { ("replay identical", recording, false) };
        foreach (var (name, positions) in new[] { ("replay byte 0", new[] { 0 }), ("replay bytes 0-7", Enumerable.Range(0, 8).ToArray()), ("replay byte 16", new[] { 16 }), ("replay bytes 62-63", new[] { 62, 63 }) })
        {
            var changed = recording.ToArray();
            foreach (var p in positions)
            {
                changed[p] ^= 0x5A;
            }

            probes.Add((name, changed, false));
        }

        foreach (var length in Enumerable.Range(1, 100).Append(221))
        {
            probes.Add(($"random {length}", RandomNumberGenerator.GetBytes(length), false));
        }

        probes.Add(("random 60, one byte at a time", RandomNumberGenerator.GetBytes(60), true));
        var results = await Task.WhenAll(probes.Select(p => ProbeAsync(server, p.Name, p.Bytes, p.OneByteAtATime)));
        return [.. results];
    }

    private static async Task<(string Name, string Kind, TimeSpan After)> ProbeAsync(IPEndPoint server, string name, byte[] probe, bool oneByteAtATime)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(server);
        if (oneByteAtATime)
        {
            for (var i = 0; i < probe.Length; i++)
            {
                await socket.SendAsync(probe.AsMemory(i, 1));
                await Task.Delay(10);
            }
        }
        else
        {
            await socket.SendAsync(probe);
        }

        var clock = Stopwatch.StartNew();
        using var cap = new CancellationTokenSource(s_timeout + TimeSpan.FromSeconds(4));
        try
        {
            var n = await socket.ReceiveAsync(new byte[256], SocketFlags.None, cap.Token);
            return (name, n == 0 ? "server FIN" : "data", clock.Elapsed);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return (name, "server RST", clock.Elapsed);
        }
        catch (OperationCanceledException)
        {
            return (name, "still open", clock.Elapsed);
        }
    }
}
