namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>A clock stopped at one instant, in a time zone of its own (not the machine's), for exact timestamps.</summary>
internal sealed class FixedLocalClock(DateTimeOffset utcNow, TimeSpan utcOffset) : TimeProvider
{
    private readonly TimeZoneInfo _zone = TimeZoneInfo.CreateCustomTimeZone("test", utcOffset, "test", "test");

    public override DateTimeOffset GetUtcNow() => utcNow;

    public override TimeZoneInfo LocalTimeZone => _zone;
}
