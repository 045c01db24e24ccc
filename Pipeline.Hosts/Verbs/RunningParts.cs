using Shadowsocks.Pipeline.Hosts.Service;
using Shadowsocks.Pipeline.Stages.Relay;

namespace Shadowsocks.Pipeline.Hosts.Verbs;

/// <summary>
/// Stops what a relay verb started (relays, resolver, SIP003 plugin child). Every part is stopped even when another's
/// stop throws: a failure is said in one line and the next part stops, so that one relay cannot leave the plugin
/// child or the UDP relay running while the process exits.
/// </summary>
internal static class RunningParts
{
    /// <summary>
    /// Stops what is running, the last started first, and takes it off the list: a second call stops nothing twice.
    /// Returns how many parts failed to stop (each said on <paramref name="error"/>).
    /// </summary>
    public static async Task<int> StopAsync(List<IAsyncDisposable> running, TextWriter error)
    {
        var failed = 0;
        while (running.Count > 0)
        {
            var last = running[^1];
            running.RemoveAt(running.Count - 1);
            failed += await StopOneAsync(last, error).ConfigureAwait(false) ? 0 : 1;
        }

        return failed;
    }

    /// <summary>Stops one part; false, with one line on <paramref name="error"/>, when its stop threw.</summary>
    public static async Task<bool> StopOneAsync(IAsyncDisposable part, TextWriter error)
    {
        try
        {
            await part.DisposeAsync().ConfigureAwait(false);
            return true;
        }
        catch (Exception e)
        {
            // Not expected: said as the other failures are, and the stop goes on with the next part.
            error.WriteLine($"shadowsocks: stopping {Name(part)} failed: {e.GetType().Name}: {e.Message}");
            return false;
        }
    }

    private static string Name(IAsyncDisposable part) => part switch
    {
        PluginProcess plugin => $"plugin {plugin.Settings.Name}",
        ServerUdpRelay or LocalUdpRelay or TunnelUdpRelay => "the UDP relay",
        ITcpRelay => "the TCP relay",
        DisposeAsync => "the DNS resolver",
        _ => part.GetType().Name,
    };
}
