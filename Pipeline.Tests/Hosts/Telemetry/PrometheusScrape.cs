using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace Shadowsocks.Pipeline.Tests.Hosts.Telemetry;

/// <summary>Scrapes a real process's <c>--metrics</c> endpoint and reads its samples.</summary>
internal static class PrometheusScrape
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(45);

    public static string Url(IPEndPoint at) => $"http://{at}/metrics";

    /// <summary>The sample of that name and labels (labels sorted by name, as the endpoint writes them), exactly; null when there is none.</summary>
    public static double? Value(string exposition, string series)
    {
        var match = Regex.Match(exposition, $"^{Regex.Escape(series)} (\\S+)$", RegexOptions.Multiline);
        return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Scrapes until <paramref name="done"/> holds; fails, with the last scrape, after <see cref="Deadline"/>.</summary>
    public static async Task<string> UntilAsync(HttpClient http, IPEndPoint at, Func<string, bool> done, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var text = await http.GetStringAsync(Url(at), cancellationToken);
            if (done(text))
            {
                return text;
            }

            Assert.True(clock.Elapsed < Deadline, $"not there after {Deadline}:\n{text}");
            await Task.Delay(100, cancellationToken);
        }
    }
}
