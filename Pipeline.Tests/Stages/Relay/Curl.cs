using System.Diagnostics;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>Runs the real curl (CI installs it) and returns what it printed; fails loudly if it is missing or fails.</summary>
internal static class Curl
{
    public static async Task<string> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("curl not found: apt-get install curl (.ci/run does)");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        Assert.True(process.ExitCode == 0, $"curl exited {process.ExitCode}: {await error}");
        return await output;
    }
}
