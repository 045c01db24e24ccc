using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;
using Shadowsocks.Pipeline.Tests.Hosts.Configuration;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A multi-user 2022 server (SIP023) from its config file, with a local per user from its <c>iPSK:uPSK</c> password:
/// each user's connections go through, carry the user's name on their span, and count their bytes under it.
/// </summary>
public sealed class MultiUserRelayTests
{
    [Theory]
    [InlineData("2022-blake3-aes-128-gcm")]
    [InlineData("2022-blake3-aes-256-gcm")]
    public async Task EachUsersConnections_GoThrough_AndAreNamedInSpansAndMetrics(string method)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var size = method.Contains("128", StringComparison.Ordinal) ? 16 : 32;
        var (identity, alice, bob) = (Key(size), Key(size), Key(size));
        // Names of this run's own: spans and metrics are process-wide, and other tests' users may be called alice too.
        var runTag = Convert.ToHexString(RandomNumberGenerator.GetBytes(4));
        var (aliceName, bobName) = ($"alice-{runTag}", $"bob-{runTag}");
        var path = Path.GetTempFileName();
        File.WriteAllText(path, $$"""
            { "server": "127.0.0.1", "server_port": 8388, "method": "{{method}}", "password": "{{identity}}", "forbidden_ip": "",
              "users": [ { "name": "{{aliceName}}", "password": "{{alice}}" }, { "name": "{{bobName}}", "password": "{{bob}}" } ] }
            """);
        var serverSettings = TestSettings.Build("server", ["-c", path]);
        File.Delete(path);

        var run = new ConcurrentBag<Activity>();
        using var spans = new ActivityListener
        {
            ShouldListenTo = s => s.Name == PipelineTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.ParentSpanId == default && a.OperationName == "server connection")
                {
                    run.Add(a);
                }
            },
        };
        ActivitySource.AddActivityListener(spans);
        var bytesByUser = new ConcurrentDictionary<string, long>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == "pipeline.bytes_relayed")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        meters.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == TagNames.UserName && tag.Value is string user)
                {
                    bytesByUser.AddOrUpdate(user, value, (_, sum) => sum + value);
                }
            }
        });
        meters.Start();

        await using var destination = new EchoDestination();
        await using var server = new ServerTcpRelay(
            serverSettings.Relay with { Listen = new IPEndPoint(IPAddress.Loopback, 0) }, new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var sizes = new Dictionary<string, int> { [aliceName] = 100_000, [bobName] = 300_000 };
        foreach (var (name, key) in new[] { (aliceName, alice), (bobName, bob) })
        {
            var localSettings = TestSettings.Build("local", ["-s", "127.0.0.1", "-p", server.LocalEndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-l", "0", "-m", method, "-k", $"{identity}:{key}"]);
            await using var local = new LocalTcpRelay(localSettings.Relay, ProgramScheduler.Instance, TimeProvider.System);
            local.Start();
            await Transfer.EchoThroughSocks5Async(local.LocalEndPoint, destination.EndPoint.Port, 2, sizes[name], cancel.Token);
        }

        // Without the identity key, the server's own key alone is nobody: the connection never reaches the destination.
        var stranger = TestSettings.Build("local", ["-s", "127.0.0.1", "-p", server.LocalEndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-l", "0", "-m", method, "-k", identity]);
        await using (var strangerLocal = new LocalTcpRelay(stranger.Relay, ProgramScheduler.Instance, TimeProvider.System))
        {
            strangerLocal.Start();
            var (socket, reply) = await Socks5TestClient.ConnectAsync(strangerLocal.LocalEndPoint, "127.0.0.1", destination.EndPoint.Port, cancel.Token);
            using (socket)
            {
                Assert.Equal(0, reply); // the local answers once its server connection stands
                await socket.SendAsync("hello"u8.ToArray(), System.Net.Sockets.SocketFlags.None, cancel.Token);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token);
                wait.CancelAfter(TimeSpan.FromSeconds(1));
                var buffer = new byte[16];
                await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, wait.Token));
            }
        }

        while (run.Count(a => a.GetTagItem(TagNames.UserName) is string user && user.EndsWith(runTag, StringComparison.Ordinal)) < 4)
        {
            await Task.Delay(20, cancel.Token);
        }

        meters.RecordObservableInstruments();
        Assert.Equal(2, run.Count(a => a.GetTagItem(TagNames.UserName) as string == aliceName));
        Assert.Equal(2, run.Count(a => a.GetTagItem(TagNames.UserName) as string == bobName));
        foreach (var (user, bytes) in sizes)
        {
            // Each way, two connections; the way to the client counts what the server sends (salt, headers, tags too).
            Assert.InRange(bytesByUser.GetValueOrDefault(user), 2 * 2 * bytes, (2 * 2 * bytes) + (bytes / 100) + 1024);
        }
    }

    private static string Key(int size) => Convert.ToBase64String(RandomNumberGenerator.GetBytes(size));
}
