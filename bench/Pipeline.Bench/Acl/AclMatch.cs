using System.Diagnostics;
using System.Net;
using System.Text;
using Shadowsocks.Pipeline.Core.Configuration;

namespace Shadowsocks.Pipeline.Bench.Acl;

/// <summary>
/// What one ACL decision costs with lists the size of the usual "bypass China" ACLs: 8,000 networks and 6,000
/// host-name rules of the <c>(^|\.)example\.com$</c> form. Microseconds per decision for a name and an address that no
/// list holds (every entry is looked at), and for ones the lists hold.
/// <c>dotnet run -c Release --project bench/Pipeline.Bench -- acl [seconds per figure]</c>.
/// </summary>
internal static class AclMatch
{
    public static void Run(string[] args)
    {
        var seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1;
        var random = new Random(7);
        var text = new StringBuilder("[proxy_all]\n[bypass_list]\n");
        for (var i = 0; i < 8_000; i++)
        {
            text.Append(random.Next(1, 224)).Append('.').Append(random.Next(256)).Append(".0.0/").Append(random.Next(16, 25)).Append('\n');
        }

        for (var i = 0; i < 6_000; i++)
        {
            text.Append(@"(^|\.)site").Append(i).Append(@"\.example\.cn$").Append('\n');
        }

        var parse = Stopwatch.StartNew();
        if (!AccessControlList.TryParse(text.ToString(), out var acl, out var error))
        {
            throw new InvalidOperationException(error);
        }

        Console.WriteLine($"{"parse 14,000 lines",-44}{parse.Elapsed.TotalMilliseconds,8:F1} ms");
        Report("name on no list (every rule tried)", seconds, () => acl.BypassesName("www.not-listed.example.org"));
        Report("name on the bypass list", seconds, () => acl.BypassesName("www.site5999.example.cn"));
        var outside = IPAddress.Parse("240.1.2.3");
        Report("address on no list (every network tried)", seconds, () => acl.Bypasses(outside));
        var listed = IPAddress.Parse(text.ToString().Split('\n')[2].Split('/')[0]);
        Report("address on the bypass list", seconds, () => acl.Bypasses(listed));
    }

    private static void Report(string label, double seconds, Func<bool?> operation)
    {
        for (var i = 0; i < 200; i++)
        {
            operation();
        }

        var watch = Stopwatch.StartNew();
        long count = 0;
        while (watch.Elapsed.TotalSeconds < seconds)
        {
            for (var i = 0; i < 100; i++)
            {
                operation();
            }

            count += 100;
        }

        Console.WriteLine($"{label,-44}{watch.Elapsed.TotalMicroseconds / count,8:F2} µs");
    }

    private static void Report(string label, double seconds, Func<bool> operation) => Report(label, seconds, () => (bool?)operation());
}
