using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Stages.Connect;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// A local or tunnel with several servers: one line when a server is skipped because its last attempts failed (a
/// warning, naming it and the error) and one when it answers again and is back in use, once per outage, not per
/// connection (<see cref="PipelineTelemetry.ServerCircuitChanges"/>). Without these a dead first server went unsaid
/// as long as a fallback answered.
/// </summary>
internal sealed class ServerCircuitLog : IDisposable
{
    private readonly ILogger _logger;
    private readonly MeterListener _listener;

    public ServerCircuitLog(ILogger logger)
    {
        _logger = logger;
        _listener = CounterListener.Start("pipeline.server_circuit_changes", (_, _, tags, _) => Write(tags));
    }

    public void Dispose() => _listener.Dispose();

    private void Write(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var server = CounterListener.Tag(tags, TagNames.ServerAddress);
        var reason = CounterDetail.Current ?? CounterListener.Tag(tags, TagNames.Reason); // the error's text, not the bounded tag
        if (CounterListener.Tag(tags, TagNames.CircuitState) == "open")
        {
            _logger.LogWarning("server {Server} failed ({Reason}): skipped for {Seconds} s, connections go to the other servers (all are tried when every one is skipped); then tried again", server, reason, ServerFailover.BreakDuration.TotalSeconds);
        }
        else
        {
            _logger.LogInformation("server {Server} answers again: back in use", server);
        }
    }
}
