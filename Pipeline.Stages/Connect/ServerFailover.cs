using System.Net;
using System.Net.Sockets;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace Shadowsocks.Pipeline.Stages.Connect;

/// <summary>
/// Local and tunnel: how to reach a Shadowsocks server when there may be several. Each server has its own Polly
/// pipeline: retry with a short exponential back-off, a circuit breaker, and a per-attempt timeout. Servers are
/// tried in order; one whose circuit is open is skipped at once (no waiting on a dead server). If every circuit is
/// open, the first server is tried directly anyway, so a restarted server is back in use on the next connection.
/// </summary>
internal sealed class ServerFailover
{
    /// <summary>First retry delay; doubles after each attempt.</summary>
    private static readonly TimeSpan s_firstRetryDelay = TimeSpan.FromMilliseconds(50);

    private readonly (EndPoint Server, ResiliencePipeline Pipeline)[] _servers;
    private readonly ResiliencePipeline _direct;

    public ServerFailover(IReadOnlyList<EndPoint> servers, TimeSpan attemptTimeout, int retries, TimeProvider timeProvider)
    {
        ArgumentOutOfRangeException.ThrowIfZero(servers.Count);
        _servers = [.. servers.Select(server => (server, Build(attemptTimeout, retries, timeProvider, withBreaker: servers.Count > 1)))];
        _direct = new ResiliencePipelineBuilder { TimeProvider = timeProvider }.AddTimeout(attemptTimeout).Build();
    }

    public IReadOnlyList<EndPoint> Servers => [.. _servers.Select(s => s.Server)];

    /// <summary>Connects to the first server that answers; throws the last failure when none does.</summary>
    public async Task<(Socket Socket, EndPoint Server)> ConnectAsync(Func<EndPoint, CancellationToken, ValueTask<Socket>> open, CancellationToken cancellationToken)
    {
        Exception? last = null;
        foreach (var (server, pipeline) in _servers)
        {
            try
            {
                var socket = await pipeline.ExecuteAsync(
                    static async (state, token) => await state.open(state.server, token).ConfigureAwait(false),
                    (open, server),
                    cancellationToken).ConfigureAwait(false);
                return (socket, server);
            }
            catch (BrokenCircuitException e)
            {
                last ??= e;
            }
            catch (Exception e) when (e is SocketException or TimeoutRejectedException)
            {
                last = e;
            }
        }

        if (last is BrokenCircuitException)
        {
            var (first, _) = _servers[0];
            var socket = await _direct.ExecuteAsync(
                static async (state, token) => await state.open(state.first, token).ConfigureAwait(false),
                (open, first),
                cancellationToken).ConfigureAwait(false);
            return (socket, first);
        }

        throw last!;
    }

    private static ResiliencePipeline Build(TimeSpan attemptTimeout, int retries, TimeProvider timeProvider, bool withBreaker)
    {
        var handled = new PredicateBuilder().Handle<SocketException>().Handle<TimeoutRejectedException>();
        var builder = new ResiliencePipelineBuilder { TimeProvider = timeProvider };
        if (retries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = retries,
                Delay = s_firstRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                ShouldHandle = handled,
            });
        }

        if (withBreaker)
        {
            // Half the attempts failing over 10 s (at least 3) opens the circuit for 5 s: connections go to the next server.
            builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = 0.5,
                MinimumThroughput = 3,
                SamplingDuration = TimeSpan.FromSeconds(10),
                BreakDuration = TimeSpan.FromSeconds(5),
                ShouldHandle = handled,
            });
        }

        return builder.AddTimeout(attemptTimeout).Build();
    }
}
