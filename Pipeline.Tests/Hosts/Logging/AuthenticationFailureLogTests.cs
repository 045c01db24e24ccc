using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Hosts.Logging;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>The default-level warning about authentication failures: the first at once, then one line a minute at most.</summary>
public sealed class AuthenticationFailureLogTests
{
    [Fact]
    public void TheFirstFailure_IsOneLineAtOnce_LaterOnesAreCountedIntoOneLineAMinute()
    {
        var clock = new ManualTimeProvider();
        var logger = new WarningsLogger();
        using var log = new AuthenticationFailureLog(logger, clock);

        log.Count(1);
        Assert.Single(logger.Lines);
        Assert.Contains("another password or method", logger.Lines[0], StringComparison.Ordinal);

        // A flood of probes within the minute: counted, not logged (other tests' failures may count here too).
        for (var i = 0; i < 1000; i++)
        {
            log.Count(1);
        }

        clock.Advance(TimeSpan.FromSeconds(59));
        log.Count(1);
        Assert.Single(logger.Lines);

        clock.Advance(TimeSpan.FromSeconds(2));
        log.Count(1);
        Assert.Equal(2, logger.Lines.Count);
        Assert.Matches("^[0-9]{4,} more connections or datagrams failed authentication since the last such line", logger.Lines[1]);
    }

    private sealed class WarningsLogger : ILogger
    {
        private readonly List<string> _lines = [];

        public List<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            Assert.Equal(LogLevel.Warning, logLevel);
            lock (_lines)
            {
                _lines.Add(formatter(state, exception));
            }
        }
    }
}
