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
    private readonly MeterListener _listener = new();

    public ServerCircuitLog(ILogger logger)
    {
        _logger = logger;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            // By name, as FailureWarning: the instrument may be published before PipelineTelemetry's field is assigned.
            if (instrument.Meter.Name == PipelineTelemetry.Name && instrument.Name == "pipeline.server_circuit_changes")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, _, tags, _) => Write(tags));
        _listener.Start();
    }

    public void Dispose() => _listener.Dispose();

    private void Write(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string? server = null;
        string? state = null;
        string? reason = null;
        foreach (var tag in tags)
        {
            switch (tag.Key)
            {
                case TagNames.ServerAddress:
                    server = tag.Value as string;
                    break;
                case TagNames.CircuitState:
                    state = tag.Value as string;
                    break;
                case TagNames.Reason:
                    reason = tag.Value as string;
                    break;
            }
        }

        if (state == "open")
        {
            _logger.LogWarning("server {Server} failed ({Reason}): skipped for {Seconds} s, connections go to the other servers (all are tried when every one is skipped); then tried again", server, reason, ServerFailover.BreakDuration.TotalSeconds);
        }
        else
        {
            _logger.LogInformation("server {Server} answers again: back in use", server);
        }
    }
}
