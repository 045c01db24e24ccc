using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Connect;

/// <summary>
/// Local and tunnel: how to reach a Shadowsocks server when there may be several. Each server has its own Polly
/// pipeline: retry with a short exponential back-off, a circuit breaker, and a per-attempt timeout. Servers are
/// tried in order; one whose circuit is open is skipped at once (no waiting on a dead server). If every circuit is
/// open, they are all tried directly anyway, raced in order as <see cref="HappyEyeballs"/> races addresses within one
/// attempt timeout, so a restarted server (any of them) is back in use on the next connection, and a first one that
/// never answers costs the others a quarter of a second, not the timeout. A circuit that opens, and one that closes
/// again, is counted once per outage in <see cref="PipelineTelemetry.ServerCircuitChanges"/> (the host's log line).
/// </summary>
internal sealed class ServerFailover
{
    /// <summary>How long a server whose circuit opened is skipped before one connection tries it again.</summary>
    public static TimeSpan BreakDuration { get; } = TimeSpan.FromSeconds(30);

    /// <summary>The reason of a circuit that closed: its server answered again.</summary>
    public const string AnsweredAgain = "answered";

    /// <summary>First retry delay; doubles after each attempt.</summary>
    private static readonly TimeSpan s_firstRetryDelay = TimeSpan.FromMilliseconds(50);

    private readonly (EndPoint Server, ResiliencePipeline Pipeline)[] _servers;
    private readonly ResiliencePipeline _direct;
    private readonly ConcurrentDictionary<string, IPAddress> _answered = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The servers whose circuit opened and did not close since: a half-open attempt that fails opens it again, unsaid.</summary>
    private readonly ConcurrentDictionary<EndPoint, bool> _down = new();

    public ServerFailover(IReadOnlyList<EndPoint> servers, TimeSpan attemptTimeout, int retries, TimeProvider timeProvider)
    {
        ArgumentOutOfRangeException.ThrowIfZero(servers.Count);
        AttemptTimeout = attemptTimeout;
        TimeProvider = timeProvider;
        _servers = [.. servers.Select(server => (server, Build(server, attemptTimeout, retries, timeProvider, withBreaker: servers.Count > 1)))];
        _direct = new ResiliencePipelineBuilder { TimeProvider = timeProvider }.AddTimeout(attemptTimeout).Build();
    }

    public IReadOnlyList<EndPoint> Servers => [.. _servers.Select(s => s.Server)];

    /// <summary>
    /// A server's circuit opened (<c>true</c>: it is skipped) or closed again (<c>false</c>: it answered), once per outage
    /// as the counter has it, raised on the thread of the connection whose attempt changed it. The UDP side follows it
    /// (<see cref="Udp.UdpServerAddress.Follow"/>).
    /// </summary>
    public event Action<EndPoint, bool>? CircuitChanged;

    /// <summary>Whether <paramref name="server"/>'s circuit is open: it stopped answering and has not answered since.</summary>
    public bool IsSkipped(EndPoint server) => _down.ContainsKey(server);

    /// <summary>
    /// A server as the user gave it: <c>host:port</c> for a name (DnsEndPoint's own text is "Unspecified/host:port"),
    /// the host in brackets when it holds a ':' (<c>[::1]:8388</c>, as <see cref="ShadowsocksAddress.ToString"/> writes it).
    /// </summary>
    public static string Name(EndPoint server) =>
        server is DnsEndPoint dns ? $"{ShadowsocksAddress.Bracketed(dns.Host)}:{dns.Port}" : server.ToString()!;

    /// <summary>How long one attempt at one server may take (the connect timeout).</summary>
    public TimeSpan AttemptTimeout { get; }

    public TimeProvider TimeProvider { get; }

    /// <summary>The address a server given by name last answered at (null before the first connection).</summary>
    public IPAddress? LastAnswered(DnsEndPoint server) => _answered.TryGetValue(server.Host, out var address) ? address : null;

    public void Answered(DnsEndPoint server, IPAddress address)
    {
        if (!address.Equals(LastAnswered(server)))
        {
            _answered[server.Host] = address;
        }
    }

    /// <summary>
    /// Connects to the first server that answers; when none does, throws a <see cref="ServerUnreachableException"/>
    /// holding the last failure and the server it came from.
    /// </summary>
    public async Task<(Socket Socket, EndPoint Server)> ConnectAsync(Func<EndPoint, CancellationToken, ValueTask<Socket>> open, CancellationToken cancellationToken)
    {
        Exception? last = null;
        EndPoint? failed = null;
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
                if (last is null)
                {
                    (last, failed) = (e, server);
                }
            }
            catch (Exception e) when (e is SocketException or TimeoutRejectedException)
            {
                (last, failed) = (e, server);
            }
        }

        if (last is BrokenCircuitException)
        {
            // Every circuit is open: all of them at once, in order (the first alone left a server that came back unused
            // behind a first one that never answers, each connection failing after the whole timeout). The server named
            // with the failure is the one whose attempt failed last.
            var raced = new StrongBox<EndPoint>(failed!);
            try
            {
                var (socket, index) = await _direct.ExecuteAsync(
                    static async (state, token) => await HappyEyeballs.ConnectAsync(state.Servers, state.Tracked, state.TimeProvider, token).ConfigureAwait(false),
                    (Servers, Tracked: Tracked(open, raced), TimeProvider),
                    cancellationToken).ConfigureAwait(false);
                return (socket, _servers[index].Server);
            }
            catch (Exception e) when (e is SocketException or TimeoutRejectedException)
            {
                throw new ServerUnreachableException(raced.Value!, e);
            }
        }

        throw new ServerUnreachableException(failed!, last!);
    }

    /// <summary><paramref name="open"/>, noting in <paramref name="failed"/> the server of each attempt that fails.</summary>
    private static Func<EndPoint, CancellationToken, ValueTask<Socket>> Tracked(Func<EndPoint, CancellationToken, ValueTask<Socket>> open, StrongBox<EndPoint> failed) =>
        async (server, token) =>
        {
            try
            {
                return await open(server, token).ConfigureAwait(false);
            }
            catch
            {
                Volatile.Write(ref failed.Value, server);
                throw;
            }
        };

    private ResiliencePipeline Build(EndPoint server, TimeSpan attemptTimeout, int retries, TimeProvider timeProvider, bool withBreaker)
    {
        var handled = new PredicateBuilder().Handle<SocketException>().Handle<TimeoutRejectedException>();
        var builder = new ResiliencePipelineBuilder { TimeProvider = timeProvider };
        if (retries > 0)
        {
            // A quick failure (refused, reset) is retried: a restarting server may be back a moment later. A timeout is
            // not: a server that does not answer within the connect timeout will not answer the retry either, and three of them
            // held each connection three timeouts long before the next server was tried.
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = retries,
                Delay = s_firstRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                ShouldHandle = new PredicateBuilder().Handle<SocketException>(),
            });
        }

        if (withBreaker)
        {
            // Half the attempts failing (at least 2) within three attempt timeouts opens the circuit for 30 s: connections
            // go to the next server at once. The window spans several timeouts so that a server that does not answer
            // opens it with connections made one at a time (over 10 s, one 10 s timeout each never made 3).
            builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = 0.5,
                MinimumThroughput = 2,
                SamplingDuration = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(10).Ticks, 3 * attemptTimeout.Ticks)),
                BreakDuration = ServerFailover.BreakDuration,
                ShouldHandle = handled,
                OnOpened = args =>
                {
                    if (_down.TryAdd(server, true))
                    {
                        var why = args.Outcome.Exception switch
                        {
                            SocketException failed => failed.SocketErrorCode.ToString(),
                            _ => $"no answer within {attemptTimeout.TotalSeconds:0.###} s",
                        };
                        Changed(server, "open", ServerConnectFailure.Of(args.Outcome.Exception), why);
                        CircuitChanged?.Invoke(server, true);
                    }

                    return default;
                },
                OnClosed = args =>
                {
                    if (_down.TryRemove(server, out _))
                    {
                        Changed(server, "closed", AnsweredAgain, "answers again");
                        CircuitChanged?.Invoke(server, false);
                    }

                    return default;
                },
            });
        }

        return builder.AddTimeout(attemptTimeout).Build();
    }

    /// <summary>
    /// Counts a circuit's change, tagged with the server, the state and a bounded reason (<see cref="ServerConnectFailure"/>'s,
    /// or <see cref="AnsweredAgain"/> when it closes); <paramref name="detail"/>, the error as the log line names it, goes to
    /// the counter's listeners only (<see cref="CounterDetail"/>).
    /// </summary>
    private static void Changed(EndPoint server, string state, string reason, string detail) =>
        CounterDetail.Add(
            PipelineTelemetry.ServerCircuitChanges,
            detail,
            new KeyValuePair<string, object?>(TagNames.ServerAddress, Name(server)),
            new KeyValuePair<string, object?>(TagNames.CircuitState, state),
            new KeyValuePair<string, object?>(TagNames.Reason, reason));
}
