using Microsoft.Extensions.Logging;

namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>A logger that keeps the lines written to it (from any thread); with <paramref name="only"/>, every line must be of that level.</summary>
internal sealed class LinesLogger(LogLevel? only = null) : ILogger
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
        if (only is { } level)
        {
            Assert.Equal(level, logLevel);
        }

        lock (_lines)
        {
            _lines.Add(formatter(state, exception));
        }
    }
}
