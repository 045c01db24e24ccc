using Shadowsocks.Pipeline.Hosts.Verbs;

namespace Shadowsocks.Pipeline.Tests.Hosts.Verbs;

/// <summary>
/// The stop of what a relay verb started: one part whose stop throws no longer keeps the parts started before it
/// running (a plugin child, the UDP relay); each failure is one line, and the count says the stop was not clean.
/// </summary>
public sealed class RunningPartsTests
{
    [Fact]
    public async Task APartWhoseStopThrows_TheOthersStopAllTheSame_AndTheFailureIsOneLine()
    {
        var stopped = new List<string>();
        List<IAsyncDisposable> running = [new Part("first", stopped), new Part("failing", stopped, fails: true), new Part("last", stopped)];
        var error = new StringWriter();

        var failed = await RunningParts.StopAsync(running, error);

        Assert.Equal(1, failed);
        Assert.Equal(["last", "failing", "first"], stopped); // the last started first, and on past the failure
        Assert.Empty(running);
        Assert.Equal("shadowsocks: stopping Part failed: InvalidOperationException: failing would not stop", Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal(0, await RunningParts.StopAsync(running, error)); // nothing stops twice
    }

    /// <summary>A stand-in for a relay or plugin: notes its stop, and throws if told to.</summary>
    private sealed class Part(string name, List<string> stopped, bool fails = false) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            stopped.Add(name);
            return fails ? throw new InvalidOperationException($"{name} would not stop") : ValueTask.CompletedTask;
        }
    }
}
