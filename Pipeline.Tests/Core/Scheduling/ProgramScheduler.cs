using Shadowsocks.Pipeline.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Core.Scheduling;

/// <summary>The scheduler the program gives its relays (real time), for tests that run relays as the program does.</summary>
internal static class ProgramScheduler
{
    public static TimeProviderScheduler Instance { get; } = new(TimeProvider.System);
}
