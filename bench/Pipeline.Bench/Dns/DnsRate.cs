using System.Diagnostics;
using System.Net;
using System.Reactive.Concurrency;
using Shadowsocks.Pipeline.Core.Dns;

namespace Shadowsocks.Pipeline.Bench.Dns;

/// <summary>
/// Lookups per second against a name server: our resolver uncached (a fresh name each time) and cached (one name),
/// beside the system resolver (<c>Dns.GetHostAddressesAsync</c>, which asks the resolv.conf server and does not
/// cache). Run by bench/e2e/dns_rate.sh, which puts dnsmasq and this process in a private network namespace so
/// resolv.conf can point at dnsmasq without touching the machine's. Concurrency 16, fixed duration.
/// </summary>
internal static class DnsRate
{
    private const int Concurrency = 16;

    public static async Task RunAsync(string[] args)
    {
        var server = IPEndPoint.Parse(args.Length > 1 ? args[1] : "127.0.0.1:53");
        var seconds = args.Length > 2 ? double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 5;
        using var resolver = new DnsResolver(new DnsResolverOptions { Servers = [server], HostsPath = "/dev/null" }, TaskPoolScheduler.Default, TimeProvider.System);
        var unique = 0;

        var uncached = await MeasureAsync(seconds, async () =>
            (await resolver.ResolveAsync($"n{Interlocked.Increment(ref unique)}.bench.test", CancellationToken.None)).Length > 0);
        var cached = await MeasureAsync(seconds, async () =>
            (await resolver.ResolveAsync("n1.bench.test", CancellationToken.None)).Length > 0);
        var system = await MeasureAsync(seconds, async () =>
            (await System.Net.Dns.GetHostAddressesAsync($"s{Interlocked.Increment(ref unique)}.bench.test")).Length > 0);

        Console.WriteLine($"{"resolver",-28}{"lookups/s",12}{"failed",8}");
        Console.WriteLine($"{"ours, uncached",-28}{uncached.Rate,12:F0}{uncached.Failed,8}");
        Console.WriteLine($"{"ours, cached",-28}{cached.Rate,12:F0}{cached.Failed,8}");
        Console.WriteLine($"{"system (getaddrinfo)",-28}{system.Rate,12:F0}{system.Failed,8}");
        Console.WriteLine($"ratio uncached ours/system: {uncached.Rate / system.Rate:F2}");
    }

    private static async Task<(double Rate, int Failed)> MeasureAsync(double seconds, Func<Task<bool>> lookup)
    {
        var done = 0;
        var failed = 0;
        var clock = Stopwatch.StartNew();
        var until = TimeSpan.FromSeconds(seconds);
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async _ =>
        {
            while (clock.Elapsed < until)
            {
                bool ok;
                try
                {
                    ok = await lookup();
                }
                catch (System.Net.Sockets.SocketException)
                {
                    ok = false;
                }

                Interlocked.Increment(ref ok ? ref done : ref failed);
            }
        }));
        return (done / clock.Elapsed.TotalSeconds, failed);
    }
}
